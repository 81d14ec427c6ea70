//go:build lab

package calendar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/calendar"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

const (
	calUser = "office"
	calPass = "calendar-secret"
	token   = "calendar-lab-token"
)

// radicale is a private Radicale CalDAV server on 127.0.0.1: its own
// configuration, users file and storage in a temporary directory.
type radicale struct {
	t    *testing.T
	base string // http://127.0.0.1:port
	cmd  *exec.Cmd
	log  bytes.Buffer
}

func startRadicale(t *testing.T) *radicale {
	t.Helper()
	testkit.Require(t, "radicale")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`[server]
hosts = %s
[auth]
type = htpasswd
htpasswd_filename = %s/users
htpasswd_encryption = plain
[rights]
type = owner_only
[storage]
filesystem_folder = %s/collections
[logging]
level = warning
`, addr, dir, dir)
	must(t, os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "users"), []byte(calUser+":"+calPass+"\n"), 0o600))
	r := &radicale{t: t, base: "http://" + addr}
	r.cmd = exec.Command("radicale", "--config", filepath.Join(dir, "config"))
	r.cmd.Stdout, r.cmd.Stderr = &r.log, &r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, r.cmd.Start())
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		if t.Failed() {
			t.Logf("radicale's log:\n%s", r.log.String())
		}
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("radicale does not listen on %s: %s", addr, r.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// do sends one authenticated request to Radicale and wants status want.
func (r *radicale) do(method, path, ctype, body string, want ...int) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	must(r.t, err)
	req.SetBasicAuth(calUser, calPass)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	must(r.t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			return
		}
	}
	r.t.Fatalf("%s %s: HTTP %d, want %v\n%s", method, path, resp.StatusCode, want, b)
}

// put stores one event through CalDAV.
func (r *radicale) put(name, vevent string) {
	r.t.Helper()
	body := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//faxbox//lab//EN\r\n" + vevent + "END:VCALENDAR\r\n"
	r.do(http.MethodPut, "/"+calUser+"/work/"+name+".ics", "text/calendar; charset=utf-8", body, http.StatusCreated, http.StatusNoContent, http.StatusOK)
}

func ev(uid, start, extra string) string {
	return "BEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:" + start + "\r\nDURATION:PT15M\r\nSUMMARY:Reminder " + uid +
		"\r\nX-FAXBOX-CALL:99990001\r\n" + extra + "END:VEVENT\r\n"
}

// labBox is a box on the test line with the Radicale calendar, on a fake
// clock.
type labBox struct {
	t    *testing.T
	b    *box.Box
	c    *testkit.Client
	stop func()
}

func openBox(t *testing.T, dir, calURL string, clk *clock.Fake, tz *time.Location) *labBox {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Tokens = []string{token}
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	cfg.Calendars = []config.Calendar{{URL: calURL, Username: calUser, Password: calPass, Interval: job.Duration(time.Minute)}}
	b, err := box.Open(context.Background(), cfg, box.Options{Clock: clk, TimeZone: tz, Version: "lab"})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	lb := &labBox{t: t, b: b, c: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: token}}
	lb.stop = func() { cancel(); <-done; b.Close() }
	return lb
}

// status is the calendar's entry of /v1/status.
func (lb *labBox) status() calendar.Status {
	var st struct{ Calendars []calendar.Status }
	lb.c.Do(lb.t, http.MethodGet, "/v1/status", nil, "", &st)
	if len(st.Calendars) != 1 {
		lb.t.Fatalf("/v1/status lists %d calendars", len(st.Calendars))
	}
	return st.Calendars[0]
}

// synced waits until the calendar was polled at the clock's time.
func (lb *labBox) synced(clk *clock.Fake) calendar.Status {
	lb.t.Helper()
	for i := 0; i < 500; i++ {
		st := lb.status()
		if st.LastAttempt != nil && !st.LastAttempt.Before(clk.Now()) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	lb.t.Fatalf("the calendar was not polled at %s: %+v", clk.Now(), lb.status())
	return calendar.Status{}
}

// advance steps the clock a minute at a time up to to, waiting for each
// minute's poll.
func (lb *labBox) advance(clk *clock.Fake, to time.Time) {
	for clk.Now().Before(to) {
		clk.Advance(time.Minute)
		lb.synced(clk)
		// the test line's call timers (answer, hang up) follow the clock
		for i := 0; i < 5; i++ {
			time.Sleep(10 * time.Millisecond)
			clk.Advance(0)
		}
	}
}

// calls lists the call jobs as "HH:MM say" by creation time, after each
// reached its end on the test line.
func (lb *labBox) calls(clk *clock.Fake) []string {
	lb.t.Helper()
	var out []string
	for i := 0; ; i++ {
		var list struct{ Items []job.Job }
		lb.c.Do(lb.t, http.MethodGet, "/v1/calls?limit=100", nil, "", &list)
		out = out[:0]
		open := 0
		for _, j := range list.Items {
			if !j.Status.Terminal() {
				open++
			}
			out = append(out, j.CreatedAt.UTC().Format("15:04")+" "+j.Call.Say+" → "+j.To+" "+string(j.Status))
		}
		if open == 0 {
			break
		}
		if i > 300 {
			lb.t.Fatalf("calls still open: %v", out)
		}
		clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	sort.Strings(out)
	return out
}

// TestRadicaleCalendarCalls subscribes a box on the test line to a real
// Radicale calendar: a one-off event, an hourly one (floating times, read
// in the box's zone, Europe/Berlin) with an excluded and a moved
// occurrence, one event moved and one deleted after the first sync. Each
// becomes a message call at its time on the fake clock, and a restart of
// the box calls none of them again.
func TestRadicaleCalendarCalls(t *testing.T) {
	testkit.Require(t, "espeak-ng", "sox", "gs")
	tz, err := time.LoadLocation("Europe/Berlin")
	must(t, err)
	r := startRadicale(t)
	r.do("MKCALENDAR", "/"+calUser+"/work/", "", "", http.StatusCreated)
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC) // 09:00 in Berlin
	r.put("oneoff", ev("oneoff", "20261203T081000Z", ""))
	r.put("hourly", ev("hourly", "20261203T093000", "RRULE:FREQ=HOURLY;COUNT=4\r\nEXDATE:20261203T103000\r\n")+
		"BEGIN:VEVENT\r\nUID:hourly\r\nDTSTAMP:20261201T000000Z\r\nRECURRENCE-ID:20261203T113000\r\nDTSTART:20261203T114500\r\n"+
		"DURATION:PT15M\r\nSUMMARY:Reminder hourly moved\r\nX-FAXBOX-CALL:99990001\r\nEND:VEVENT\r\n")
	r.put("moved", ev("moved", "20261203T082000Z", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"))
	r.put("deleted", ev("deleted", "20261203T082500Z", ""))
	r.put("denied", strings.Replace(ev("denied", "20261203T083500Z", ""), "99990001", "0900123456", 1))
	r.put("crlf", strings.Replace(ev("crlf", "20261203T084500Z", ""), "SUMMARY:Reminder crlf", `SUMMARY:Reminder crlf\nAction: Originate\n\nChannel: x`, 1))

	clk := clock.NewFake(t0)
	dir := t.TempDir()
	calURL := r.base + "/" + calUser + "/work/"
	lb := openBox(t, dir, calURL, clk, tz)
	st := lb.synced(clk)
	if st.Kind != calendar.KindCalDAV || st.Error != "" || st.Events != 7 {
		t.Fatalf("first sync: %+v", st)
	}
	if len(st.Refused) != 1 || st.Refused[0].UID != "denied" {
		t.Errorf("refused: %+v, want the event to 0900…", st.Refused)
	}
	// After the first sync: "moved" moves from 08:15 to 08:40 (its alarm 5
	// minutes before 08:45), "deleted" is deleted.
	r.put("moved", ev("moved", "20261203T084500Z", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"))
	r.do(http.MethodDelete, "/"+calUser+"/work/deleted.ics", "", "", http.StatusOK, http.StatusNoContent)

	lb.advance(clk, t0.Add(time.Hour))
	got := lb.calls(clk)
	want := []string{
		"08:10 Reminder oneoff → 99990001 delivered",
		"08:30 Reminder hourly → 99990001 delivered", // 09:30 Berlin
		"08:40 Reminder moved → 99990001 delivered",
		"08:45 Reminder crlf Action: Originate Channel: x → 99990001 delivered",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls by 09:00:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Restart the box: nothing is called twice; the rest of the hourly
	// event follows (10:30 Berlin excluded, 11:30 moved to 11:45).
	lb.stop()
	lb = openBox(t, dir, calURL, clk, tz)
	defer func() { lb.stop() }()
	lb.synced(clk)
	lb.advance(clk, t0.Add(4*time.Hour))
	got = lb.calls(clk)
	want = append(want,
		"10:45 Reminder hourly moved → 99990001 delivered",
		"11:30 Reminder hourly → 99990001 delivered",
	)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls by 12:00, across a restart:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st := lb.status(); st.Error != "" || st.Pending != 0 || st.LastSync == nil {
		t.Errorf("status at the end: %+v", st)
	}
}

// counting is a transport that counts requests by method.
type counting struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method+" "+r.Header.Get("Depth")]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) PutState(name string, v any) error {
	b, err := json.Marshal(v)
	s.mu.Lock()
	s.m[name] = b
	s.mu.Unlock()
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

// TestRadicaleReadsOnlyChanges: a poll of an unchanged Radicale calendar
// is one PROPFIND (its ctag); after one new event, the listing and one
// calendar-multiget follow.
func TestRadicaleReadsOnlyChanges(t *testing.T) {
	r := startRadicale(t)
	r.do("MKCALENDAR", "/"+calUser+"/work/", "", "", http.StatusCreated)
	r.put("one", ev("one", "20261203T090000Z", ""))
	r.put("two", ev("two", "20261203T091000Z", ""))
	clk := clock.NewFake(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	tr := &counting{n: map[string]int{}}
	var mu sync.Mutex
	var placed []string
	svc := calendar.New(calendar.Config{
		Calendars: []config.Calendar{{URL: r.base + "/" + calUser + "/work/", Username: calUser, Password: calPass, Interval: job.Duration(time.Minute)}},
		Loc:       time.UTC, Clock: clk, State: &memState{m: map[string][]byte{}}, Transport: tr,
		Submit: func(req calendar.Request) (string, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			placed = append(placed, req.Say)
			return "job", false, nil
		},
	})
	must(t, svc.Start())
	defer svc.Close()
	poll := func(what string) calendar.Status {
		t.Helper()
		for i := 0; i < 500; i++ {
			if st := svc.Statuses()[0]; st.LastAttempt != nil && !st.LastAttempt.Before(clk.Now()) {
				if st.Error != "" {
					t.Fatalf("%s: %s", what, st.Error)
				}
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: no poll", what)
		return calendar.Status{}
	}
	if st := poll("first"); st.Events != 2 || st.Pending != 2 || st.Kind != calendar.KindCalDAV {
		t.Fatalf("first poll: %+v", st)
	}
	first := tr.take()
	if first["REPORT 1"] != 1 {
		t.Errorf("first poll: %v, want one calendar-multiget", first)
	}
	clk.Advance(time.Minute)
	poll("unchanged")
	if n := tr.take(); len(n) != 1 || n["PROPFIND 0"] != 1 {
		t.Errorf("a poll of an unchanged calendar sent %v, want one PROPFIND (Depth 0)", n)
	}
	r.put("three", ev("three", "20261203T092000Z", ""))
	clk.Advance(time.Minute)
	if st := poll("changed"); st.Events != 3 || st.Pending != 3 {
		t.Fatalf("after a new event: %+v", st)
	}
	if n := tr.take(); n["PROPFIND 0"] != 1 || n["PROPFIND 1"] != 1 || n["REPORT 1"] != 1 {
		t.Errorf("a poll after one new event sent %v, want PROPFIND 0, PROPFIND 1 and one REPORT", n)
	}
}
