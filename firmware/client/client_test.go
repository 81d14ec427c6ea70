package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEvents: events are parsed (multi-line data, ids, comments skipped);
// a stream that goes silent ends with ErrIdle; a box without the stream is
// ErrNotSupported with the API's error inside.
func TestEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(200)
		fmt.Fprint(w, ": faxbox events\nretry: 2000\n\nid: 7\nevent: job\ndata: {\"a\":\ndata: 1}\n\n: keepalive\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := New(srv.URL, "tok", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Events(context.Background(), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.ID != "7" || ev.Type != EventJob || string(ev.Data) != "{\"a\":\n1}" {
		t.Fatalf("event %+v, %v", ev, err)
	}
	start := time.Now()
	if _, err := s.Next(); !errors.Is(err, ErrIdle) || time.Since(start) > 3*time.Second {
		t.Fatalf("a silent stream: %v after %s", err, time.Since(start))
	}
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": {"code": "not_found", "message": "no such endpoint"}}`, 404)
	}))
	defer old.Close()
	c.Base = old.URL
	_, err = c.Events(context.Background(), 0)
	var ae *APIError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &ae) || ae.Code != "not_found" {
		t.Fatalf("no stream: %v", err)
	}
}

// TestSubmitEarlyAnswer: a box that refuses a submission before reading its
// body gets its error through, without the upload hanging.
func TestSubmitEarlyAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(413)
		fmt.Fprint(w, `{"error": {"code": "too_large", "message": "the upload is larger than 1 MB"}}`)
	}))
	defer srv.Close()
	big := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 8<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := New(srv.URL, "tok", 10*time.Second)
	_, _, err := c.Submit(context.Background(), Fax{To: "123", Files: []string{big}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "too_large" || ae.HTTPStatus != 413 {
		t.Fatalf("early answer: %v", err)
	}
	if _, _, err := c.Submit(context.Background(), Fax{To: "123", Files: []string{big + ".missing"}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
