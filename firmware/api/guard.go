package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// uploadWait is how long a submission waits for an upload slot before it is
// refused with 503.
const uploadWait = 5 * time.Second

// errSlowBody is the error a request body's reads return once it has fallen
// below the minimum rate (limits.body_timeout, limits.body_min_rate).
var errSlowBody = errors.New("api: the request body arrives too slowly")

// rateBody enforces a minimum average rate on a request body with the
// connection's read deadline: after grace, the body must have averaged at
// least rate bytes per second since the request began. A read that misses
// the deadline returns errSlowBody. Once the body is read to its end the
// deadline is cleared, so the server's own watch of the connection goes on
// as without it.
type rateBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	n     int64
	done  bool
}

func (b *rateBody) deadline() time.Time {
	return b.start.Add(b.grace + time.Duration(float64(b.n)/float64(b.rate)*float64(time.Second)))
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	if err := b.rc.SetReadDeadline(b.deadline()); err != nil {
		// Not an HTTP/1 connection of net/http (a test recorder): no
		// deadline to set, nothing to enforce.
		b.done = true
		return b.ReadCloser.Read(p)
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errSlowBody
	case err != nil:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// limitBodies wraps every request body in a rateBody. It hands on a copy of
// the request: net/http looks at the original's body after the handler to
// decide whether to drain the unread rest or close the connection (a
// trickling body must be closed, not drained).
func (s *Server) limitBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			r = r.WithContext(r.Context())
			r.Body = &rateBody{ReadCloser: r.Body, rc: http.NewResponseController(w), start: time.Now(),
				grace: s.Cfg.Limits.BodyTimeout.D(), rate: max(s.Cfg.Limits.BodyMinRate, 1)}
		}
		h.ServeHTTP(w, r)
	})
}

// upload admits at most limits.max_concurrent_uploads submissions into h at
// once. A request that finds no slot within uploadWait is answered 503 busy
// with Retry-After, by reject (the endpoint's own error shape).
func (s *Server) upload(h http.HandlerFunc, reject func(http.ResponseWriter, *Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), uploadWait)
		defer cancel()
		select {
		case s.uploads <- struct{}{}:
			defer func() { <-s.uploads }()
			h(w, r)
		case <-ctx.Done():
			w.Header().Set("Retry-After", strconv.Itoa(int(uploadWait/time.Second)))
			reject(w, errf(http.StatusServiceUnavailable, "busy",
				"", fmt.Sprintf("the box is reading %d other submissions; try again in a few seconds", cap(s.uploads))))
		}
	}
}

// bodyErr maps an error reading a request body to the answer: 413 past the
// size limit, 408 when it arrives too slowly, else 400. The message never
// carries server paths.
func (s *Server) bodyErr(err error, field string) *Error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errf(http.StatusRequestEntityTooLarge, "too_large", field, fmt.Sprintf("the upload exceeds %d bytes", s.Cfg.Limits.MaxUploadBytes))
	case errors.Is(err, errSlowBody):
		return errf(http.StatusRequestTimeout, "request_timeout", field,
			fmt.Sprintf("the request body arrived at less than %d bytes/s; it was cut", s.Cfg.Limits.BodyMinRate))
	}
	return errf(http.StatusBadRequest, "invalid_request", field, "broken multipart body: "+err.Error())
}

// readErr remembers the first error its reader returned, telling a broken
// upload from a failing disk when both reach the same writer.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// internal answers an error of the box itself: the details go to the log,
// the client gets what failed without them (they may name server paths).
func (s *Server) internal(code, what string, err error) *Error {
	s.Log.Error("api: "+what, "component", "api", "err", err)
	return errf(http.StatusInternalServerError, code, "", what+" (the box's log has the details)")
}
