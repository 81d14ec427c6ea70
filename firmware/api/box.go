package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// sseWriteTimeout is how long one server-sent event may take to reach the
// client; a client that reads nothing for that long is dropped.
const sseWriteTimeout = 10 * time.Second

// events streams every job and line change as server-sent events. Each
// write has sseWriteTimeout: a client that stops reading is dropped instead
// of holding its connection and subscription forever.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{})
	sub := s.Bus.Subscribe(1024)
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	send := func(format string, args ...any) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.WriteHeader(http.StatusOK)
	if !send(": faxbox events\nretry: 2000\n\n") {
		return
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		ok := true
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			ok = send(": keepalive\n\n")
		case e, open := <-sub.C:
			if !open {
				send("event: dropped\ndata: {\"reason\":\"client too slow\"}\n\n")
				return
			}
			if j, isJob := e.Value.(*job.Job); isJob && j.Internal != "" {
				continue // the box's own jobs (self-test, qualification): GET /v1/selftest follows them
			}
			ok = send("id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, e.Data)
		}
		if !ok {
			s.Log.Info("api: events client dropped: it reads too slowly", "component", "api", "remote", r.RemoteAddr)
			return
		}
	}
}

// StatusBody is the answer of GET /v1/status.
type StatusBody struct {
	Version  string         `json:"version"`
	Uptime   string         `json:"uptime"`
	Queue    any            `json:"queue"`
	Lines    any            `json:"lines"`
	Jobs     map[string]int `json:"jobs"`
	Disk     map[string]any `json:"disk"`
	TestLine map[string]any `json:"test_line"`
	// Destinations are the numbers with calls up or a learned cap.
	Destinations any            `json:"destinations"`
	Extra        map[string]any `json:"extra,omitempty"`
	Asterisk     bool           `json:"asterisk_configured"`
	Timestamp    time.Time      `json:"time"`

	// Calendars are the subscribed calendars (config calendars): each
	// one's last sync, error and pending calls.
	Calendars any `json:"calendars,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	total, active, _ := s.Store.Count()
	free, _ := s.Store.FreeBytes()
	b := StatusBody{
		Version:      s.Version,
		Uptime:       time.Since(s.Started).Round(time.Second).String(),
		Queue:        s.Engine.Stats(),
		Lines:        s.Engine.Lines(),
		Destinations: s.Engine.Destinations(),
		Jobs:         map[string]int{"stored": total, "active": active},
		Disk:         map[string]any{"free_bytes": free, "db_bytes": s.Store.Size(), "low": s.Cfg.Limits.MinFreeBytes > 0 && free < uint64(s.Cfg.Limits.MinFreeBytes)},
		TestLine:     map[string]any{"prefix": s.Cfg.TestLine.Prefix, "page_time": s.Cfg.TestLine.PageTime},
		Asterisk:     s.Cfg.Asterisk != nil,
		Timestamp:    s.Now(),
	}
	if s.Extra != nil {
		b.Extra = s.Extra()
	}
	if s.Calendars != nil {
		b.Calendars = s.Calendars()
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) lines(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"lines": s.Engine.Lines()})
}

// lineBusy takes a line out of service (POST) or puts it back (DELETE).
func (s *Server) lineBusy(w http.ResponseWriter, r *http.Request) {
	id, err := job.ParseLineID(r.PathValue("group") + "/" + r.PathValue("n"))
	if err == nil {
		err = s.Engine.SetLineBusy(id, r.Method == http.MethodPost)
	}
	if err != nil {
		writeErr(w, s.answer(err, "line", "", "internal", "could not change the line"))
		return
	}
	s.lines(w, r)
}

// metrics serves the Prometheus text format.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	st := s.Engine.Stats()
	total, active, _ := s.Store.Count()
	free, _ := s.Store.FreeBytes()
	var b strings.Builder
	gauge := func(name, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	gauge("faxbox_jobs_stored", "Jobs in the store.", total)
	gauge("faxbox_jobs_active", "Jobs not yet finished.", active)
	gauge("faxbox_jobs_waiting_for_line", "Ready jobs waiting for a free line.", st.Waiting)
	gauge("faxbox_jobs_converting", "Jobs being converted.", st.Converting)
	gauge("faxbox_jobs_in_call", "Jobs in a call.", st.InCall)
	gauge("faxbox_jobs_retry_wait", "Jobs waiting to retry.", st.RetryWait)
	gauge("faxbox_disk_free_bytes", "Free bytes on the data disk.", free)
	fmt.Fprintf(&b, "# HELP faxbox_line_in_call Whether a line is in a call.\n# TYPE faxbox_line_in_call gauge\n")
	for _, l := range s.Engine.Lines() {
		v := 0
		if l.JobID != "" {
			v = 1
		}
		fmt.Fprintf(&b, "faxbox_line_in_call{line=\"%s\"} %d\n", l.ID(), v)
	}
	if s.Extra != nil {
		for k, v := range s.Extra() {
			if n, ok := v.(uint64); ok {
				fmt.Fprintf(&b, "# TYPE faxbox_%s counter\nfaxbox_%s %d\n", k, k, n)
			}
		}
	}
	if s.Metrics != nil {
		s.Metrics(&b)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
}
