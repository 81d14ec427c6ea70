package calendar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
)

// memState is a State in memory that, like the store, keeps JSON.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) PutState(name string, v any) error {
	b, err := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = b
	return err
}

func (s *memState) GetState(name string, v any) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

// box records the calls placed, refusing a client_ref twice as the store
// does.
type box struct {
	mu    sync.Mutex
	clk   *clock.Fake
	calls []placed
	refs  map[string]bool
}

type placed struct {
	Request
	at time.Time
}

func (b *box) submit(r Request) (string, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refs[r.ClientRef] {
		return "dup", true, nil
	}
	b.refs[r.ClientRef] = true
	b.calls = append(b.calls, placed{r, b.clk.Now()})
	return fmt.Sprintf("call-%d", len(b.calls)), false, nil
}

func (b *box) placed() []placed {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]placed(nil), b.calls...)
}

// icsServer serves one .ics file with an ETag, answering 304 when it is
// unchanged.
type icsServer struct {
	mu        sync.Mutex
	body      string
	gets, nms int
}

func (s *icsServer) set(body string) { s.mu.Lock(); s.body = body; s.mu.Unlock() }

func (s *icsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == "PROPFIND" {
		http.Error(w, "no WebDAV here", http.StatusMethodNotAllowed)
		return
	}
	s.gets++
	etag := fmt.Sprintf(`"%x"`, len(s.body)*31+strings.Count(s.body, "T"))
	if r.Header.Get("If-None-Match") == etag {
		s.nms++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "text/calendar")
	w.Write([]byte(s.body))
}

func vevent(uid, start, extra string) string {
	return "BEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:" + start + "\r\nSUMMARY:Reminder " + uid +
		"\r\nLOCATION:tel:99990001\r\n" + extra + "END:VEVENT\r\n"
}

func vcal(events ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" + strings.Join(events, "") + "END:VCALENDAR\r\n"
}

type rig struct {
	t   *testing.T
	clk *clock.Fake
	st  *memState
	box *box
	url string
	svc *Service
}

func (r *rig) start() {
	r.svc = New(Config{Calendars: []config.Calendar{{URL: r.url, Interval: job.Duration(5 * time.Minute)}}, Loc: time.UTC,
		Deny: deny, Clock: r.clk, State: r.st, Submit: r.box.submit})
	if err := r.svc.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.synced()
}

// synced waits for the poll due now to have run.
func (r *rig) synced() Status {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := r.svc.Statuses()[0]
		if st.LastAttempt != nil && !st.LastAttempt.Before(r.clk.Now()) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("no poll at %s", r.clk.Now())
	return Status{}
}

// advance moves the clock to at in steps of at most a minute, letting each
// step's timers run.
func (r *rig) advance(to time.Time) {
	for r.clk.Now().Before(to) {
		r.clk.Advance(min(time.Minute, to.Sub(r.clk.Now())))
		time.Sleep(2 * time.Millisecond)
		if r.clk.Now().Minute()%5 == 0 {
			r.synced()
		}
	}
	time.Sleep(20 * time.Millisecond)
}

func (r *rig) expect(what string, calls ...string) {
	r.t.Helper()
	got := r.box.placed()
	var s []string
	for _, c := range got {
		s = append(s, c.at.UTC().Format("15:04")+" "+c.Say)
	}
	if strings.Join(s, "|") != strings.Join(calls, "|") {
		r.t.Fatalf("%s: calls %q, want %q", what, s, calls)
	}
}

func TestServicePlacesMovesCancelsAndNeverTwice(t *testing.T) {
	srv := &icsServer{}
	srv.set(vcal(
		vevent("a", "20261203T083000Z", ""),
		vevent("b", "20261203T090000Z", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"),
		vevent("c", "20261203T100000Z", ""),
		vevent("d", "20261203T110000Z", ""),
		vevent("past", "20261203T075500Z", ""), // before the first sync: never called
	))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	r := &rig{t: t, clk: clock.NewFake(utc("2026-12-03T08:00:00Z")), st: &memState{m: map[string][]byte{}},
		url: hs.URL + "/cal.ics"}
	r.box = &box{clk: r.clk, refs: map[string]bool{}}
	r.start()
	if st := r.svc.Statuses()[0]; st.Kind != KindICS || st.Pending != 4 || st.Error != "" || st.Events != 5 {
		t.Fatalf("status after the first sync: %+v", st)
	}
	r.advance(utc("2026-12-03T08:50:00Z"))
	r.expect("08:50", "08:30 Reminder a", "08:45 Reminder b")
	if srv.nms == 0 {
		t.Error("polls of an unchanged file were not answered 304 (If-None-Match)")
	}

	// c deleted, d moved to 12:00: c is not called, d at its new time.
	srv.set(vcal(
		vevent("a", "20261203T083000Z", ""),
		vevent("b", "20261203T090000Z", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"),
		vevent("d", "20261203T120000Z", ""),
	))
	r.advance(utc("2026-12-03T11:30:00Z"))
	r.expect("11:30", "08:30 Reminder a", "08:45 Reminder b")

	// A calendar that turns hostile keeps its last good copy.
	srv.set(strings.Repeat("BEGIN:VCALENDAR\r\n", 100))
	r.advance(utc("2026-12-03T11:35:00Z"))
	if st := r.svc.Statuses()[0]; st.Error == "" || st.Pending != 1 {
		t.Fatalf("after a malformed calendar: %+v", st)
	}
	srv.set(vcal(
		vevent("a", "20261203T083000Z", ""),
		vevent("b", "20261203T090000Z", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"),
		vevent("d", "20261203T120000Z", ""),
		vevent("e", "20261203T124000Z", ""),
	))
	r.advance(utc("2026-12-03T12:05:00Z"))
	r.expect("12:05", "08:30 Reminder a", "08:45 Reminder b", "12:00 Reminder d")
	if st := r.svc.Statuses()[0]; st.Error != "" || st.Placed != 3 {
		t.Fatalf("status: %+v", st)
	}

	// Restart: nothing is called again. Then the box is off from 12:30 to
	// 12:50: e (12:40) is called late, once.
	r.svc.Close()
	r.box.refs = map[string]bool{} // only the calendar's own state guards now
	r.start()
	r.advance(utc("2026-12-03T12:30:00Z"))
	r.expect("after a restart", "08:30 Reminder a", "08:45 Reminder b", "12:00 Reminder d")
	r.svc.Close()
	r.clk.Advance(20 * time.Minute)
	r.start()
	r.advance(utc("2026-12-03T13:00:00Z"))
	r.expect("after the box was off", "08:30 Reminder a", "08:45 Reminder b", "12:00 Reminder d", "12:50 Reminder e")
	r.svc.Close()
}

func TestServiceRefusesHugeCalendar(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Write([]byte("BEGIN:VCALENDAR\r\n"))
		line := []byte("X-PAD:" + strings.Repeat("x", 1000) + "\r\n")
		for i := 0; i < 3*MaxBytes/len(line); i++ {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer hs.Close()
	r := &rig{t: t, clk: clock.NewFake(utc("2026-12-03T08:00:00Z")), st: &memState{m: map[string][]byte{}}, url: hs.URL}
	r.box = &box{clk: r.clk, refs: map[string]bool{}}
	r.start()
	defer r.svc.Close()
	if st := r.svc.Statuses()[0]; st.Error == "" || st.LastSync != nil {
		t.Fatalf("a calendar of %d bytes was taken: %+v", 3*MaxBytes, st)
	}
}
