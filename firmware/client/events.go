package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Event types of GET /v1/events.
const (
	EventJob     = "job"     // Data: a job (job.Job)
	EventLine    = "line"    // Data: a line (dialler.LineState)
	EventDropped = "dropped" // the box dropped this client (it read too slowly)
)

// DefaultIdle is how long a Stream waits for anything (an event or the
// box's keepalive, sent every 15 s) before it gives the connection up.
const DefaultIdle = 45 * time.Second

// ErrIdle is returned by Stream.Next when nothing arrived for the idle time.
var ErrIdle = errors.New("client: the event stream went silent")

// Event is one server-sent event.
type Event struct {
	ID   string
	Type string
	Data []byte
}

// Stream is an open GET /v1/events. Next must not be called concurrently.
type Stream struct {
	resp   *http.Response
	r      *bufio.Reader
	idle   *time.Timer
	cancel context.CancelFunc
	mu     sync.Mutex
	silent bool
	wait   time.Duration
}

// Events opens the box's event stream. The client's Timeout bounds the wait
// for the answer's headers; afterwards the stream lasts until ctx ends,
// Close, or idle (DefaultIdle when 0) passes without a byte. A box without
// the endpoint is ErrNotSupported.
func (c *Client) Events(ctx context.Context, idle time.Duration) (*Stream, error) {
	if idle <= 0 {
		idle = DefaultIdle
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := c.request(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	s := &Stream{cancel: cancel, wait: idle}
	first := idle
	if c.Timeout > 0 {
		first = c.Timeout
	}
	s.idle = time.AfterFunc(first, s.expire)
	resp, err := c.http().Do(req)
	if err != nil {
		s.Close()
		if s.expired() {
			err = fmt.Errorf("no answer within %s: %w", first, err)
		}
		return nil, fmt.Errorf("client: GET %s/v1/events: %w", c.Base, err)
	}
	s.resp = resp
	if resp.StatusCode != http.StatusOK {
		defer s.Close()
		return nil, notSupported(apiError(resp), "GET", "/v1/events")
	}
	s.idle.Reset(idle)
	s.r = bufio.NewReaderSize(resp.Body, 64<<10)
	return s, nil
}

func (s *Stream) expire() {
	s.mu.Lock()
	s.silent = true
	s.mu.Unlock()
	s.cancel()
}

func (s *Stream) expired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.silent
}

// Close ends the stream.
func (s *Stream) Close() {
	s.idle.Stop()
	s.cancel()
	if s.resp != nil {
		s.resp.Body.Close()
	}
}

// Next returns the next event (comments and keepalives are skipped). An
// error ends the stream: ErrIdle when the box went silent.
func (s *Stream) Next() (Event, error) {
	var ev Event
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if s.expired() {
				return ev, ErrIdle
			}
			return ev, fmt.Errorf("client: reading events: %w", err)
		}
		s.idle.Reset(s.wait)
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if ev.Type == "" && len(data) == 0 {
				continue
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			ev.Data = []byte(strings.Join(data, "\n"))
			return ev, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		case "id":
			ev.ID = value
		}
	}
}
