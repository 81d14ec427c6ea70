package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
)

// QueueStats are the active jobs by what they wait for (/v1/status queue).
type QueueStats struct {
	Active     int `json:"active"`
	Waiting    int `json:"waiting_for_line"`
	Converting int `json:"converting"`
	InCall     int `json:"in_call"`
	RetryWait  int `json:"retry_wait"`
	// SkippedWrites counts job changes the box's store refused (0 unless
	// the box has a bug).
	SkippedWrites int64 `json:"skipped_writes"`
}

// Disk is the data disk's state (/v1/status disk).
type Disk struct {
	FreeBytes uint64 `json:"free_bytes"`
	DBBytes   int64  `json:"db_bytes"`
	Low       bool   `json:"low"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	Version  string              `json:"version"`
	Uptime   string              `json:"uptime"`
	Queue    QueueStats          `json:"queue"`
	Lines    []dialler.LineState `json:"lines"`
	Jobs     map[string]int      `json:"jobs"`
	Disk     Disk                `json:"disk"`
	TestLine map[string]any      `json:"test_line,omitempty"`
	// Destinations are the numbers with calls up or a learned cap, as the
	// box reports them.
	Destinations json.RawMessage `json:"destinations,omitempty"`
	Extra        map[string]any  `json:"extra,omitempty"`
	Asterisk     bool            `json:"asterisk_configured"`
	Time         time.Time       `json:"time"`
}

// Alarms returns the alarms the box's panel shows (extra.alarms).
func (s *Status) Alarms() []string {
	var out []string
	list, _ := s.Extra["alarms"].([]any)
	for _, a := range list {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

// Trunk returns the SIP trunk's state (reachable, unreachable, unknown), or
// "" for a box without a trunk.
func (s *Status) Trunk() string {
	t, _ := s.Extra["trunk"].(string)
	return t
}

// Status reads GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if _, err := c.do(ctx, http.MethodGet, "/v1/status", nil, "", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Lines reads GET /v1/lines: every line, its state and the job and page it
// is sending.
func (c *Client) Lines(ctx context.Context) ([]dialler.LineState, error) {
	var body struct {
		Lines []dialler.LineState `json:"lines"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/lines", nil, "", &body); err != nil {
		return nil, err
	}
	return body.Lines, nil
}

// InboxPage is one page of GET /v1/inbox: received faxes as the box
// describes them, newest first.
type InboxPage struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// Inbox reads one page of received faxes (limit 0: the box's default). A
// box without GET /v1/inbox is ErrNotSupported.
func (c *Client) Inbox(ctx context.Context, limit int, cursor string) (*InboxPage, error) {
	v := url.Values{}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	path := "/v1/inbox"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p InboxPage
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", &p); err != nil {
		return nil, notSupported(err, "GET", "/v1/inbox")
	}
	return &p, nil
}
