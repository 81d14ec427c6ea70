package receiving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/internal/testkit"
)

// fakeSource plays Asterisk's side: kept results and live channels.
type fakeSource struct {
	dir  string
	mu   sync.Mutex
	kept map[string]inbox.Reception
	live map[string]bool
}

func (f *fakeSource) Reception(m ami.Message) (inbox.Reception, bool) {
	if m.Get("UserEvent") != "FaxboxReceived" {
		return inbox.Reception{}, false
	}
	return inbox.Reception{UniqueID: m.Get("Reception"), File: f.File(m.Get("Reception")), Status: m.Get("Status"),
		Pages: atoi(m.Get("Pages")), CallerID: m.Get("CallerID"), DID: m.Get("DID"), Mode: m.Get("Mode")}, true
}

func (f *fakeSource) Kept(_ context.Context, uid string) (inbox.Reception, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rx, ok := f.kept[uid]
	return rx, ok
}

func (f *fakeSource) KeptAll(context.Context) ([]inbox.Reception, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []inbox.Reception
	for _, rx := range f.kept {
		out = append(out, rx)
	}
	return out, nil
}

// Forget deletes kept results, as the box's dialplan does.
func (f *fakeSource) Forget(_ context.Context, uids ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, uid := range uids {
		delete(f.kept, uid)
	}
	return nil
}

// keptUIDs lists the kept results' keys, sorted.
func (f *fakeSource) keptUIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for uid := range f.kept {
		out = append(out, uid)
	}
	sort.Strings(out)
	return out
}

func (f *fakeSource) Live(context.Context) (map[string]bool, error) { return f.live, nil }
func (f *fakeSource) File(uid string) string                        { return filepath.Join(f.dir, "rx-"+uid+".tif") }

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

type env struct {
	s    *Service
	st   *store.DB
	src  *fakeSource
	sub  *events.Sub
	sent chan []*store.Delivery
}

func newEnv(t *testing.T, router Router) *env {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf")
	data := t.TempDir()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		if err := store.CheckDir(data); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})
	src := &fakeSource{dir: t.TempDir(), kept: map[string]inbox.Reception{}, live: map[string]bool{}}
	bus := events.NewBus()
	e := &env{st: st, src: src, sub: bus.Subscribe(16), sent: make(chan []*store.Delivery, 16)}
	e.s = New(Config{Store: st, Source: src, Bus: bus, WebhookURL: "http://127.0.0.1:1/hook", Router: router,
		Enqueue: func(ds []*store.Delivery) { e.sent <- ds }})
	t.Cleanup(e.s.Close)
	return e
}

// writeTIFF puts a received TIFF of n pages where Asterisk would.
func (e *env) writeTIFF(t *testing.T, uid string, n int) string {
	t.Helper()
	p := e.src.File(uid)
	if err := os.WriteFile(p, testkit.FaxTIFF(t, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecordSuccess(t *testing.T) {
	e := newEnv(t, nil)
	src := e.writeTIFF(t, "1700.1", 2)
	t0 := time.Unix(1700000000, 0)
	rx := inbox.Reception{UniqueID: "1700.1", File: src, Status: "SUCCESS", Pages: 2, BitRate: 14400, Resolution: "8031x3850",
		ECM: true, Mode: "T38", CallerID: "0301234567", DID: "500", Channel: "PJSIP/trunk-00000001",
		RemoteStationID: "LAB REMOTE", Started: t0, Ended: t0.Add(41 * time.Second)}
	f, err := e.s.Record(context.Background(), rx, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != inbox.Received || f.Pages != 2 || !f.PDF || !f.TIFF || f.Transport != inbox.T38 || f.DID != "500" ||
		f.CallerID != "0301234567" || f.RemoteStationID != "LAB REMOTE" || f.DurationSeconds != 41 || f.Error != nil || f.BitRate != 14400 || f.Resolution != "204x98" {
		t.Fatalf("record: %+v", f)
	}
	dir := e.st.DocDir(string(f.ID))
	n, err := PDFPages(context.Background(), filepath.Join(dir, inbox.PDFFile))
	if err != nil || n != 2 {
		t.Fatalf("PDF pages: %d %v", n, err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("the recorded TIFF is still in the receive directory: %v", err)
	}
	// The webhook is in the outbox (committed with the record) and handed
	// to the sender; the event is published.
	ds := <-e.sent
	if len(ds) != 1 || ds[0].Event != inbox.Event || ds[0].JobID != string(f.ID) {
		t.Fatalf("deliveries: %+v", ds)
	}
	var p Payload
	if err := json.Unmarshal(ds[0].Body, &p); err != nil || p.Data.ID != f.ID || p.Event != "fax.received" {
		t.Fatalf("webhook body %s: %v", ds[0].Body, err)
	}
	ob, _ := e.st.Outbox()
	if len(ob) != 1 {
		t.Fatalf("outbox: %d", len(ob))
	}
	select {
	case ev := <-e.sub.C:
		if ev.Type != "fax.received" {
			t.Fatalf("event %s", ev.Type)
		}
	case <-time.After(time.Second):
		t.Fatal("no fax.received event")
	}
	// Reported again (the kept result after the event): one record.
	again, err := e.s.Record(context.Background(), rx, true)
	if err != nil || again.ID != f.ID {
		t.Fatalf("again: %v %v", again, err)
	}
	if all, _, _ := e.st.ListReceived(inbox.Filter{}); len(all) != 1 {
		t.Fatalf("%d records", len(all))
	}
}

func TestRecordPartialAndFailed(t *testing.T) {
	e := newEnv(t, nil)
	src := e.writeTIFF(t, "1700.2", 1)
	f, err := e.s.Record(context.Background(), inbox.Reception{UniqueID: "1700.2", File: src, Status: "FAILED", Error: "HANGUP",
		StatusStr: "Disconnected after permission to transmit", Pages: 1, Mode: "audio"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != inbox.Partial || f.Pages != 1 || !f.PDF || f.Error == nil || f.Error.Code != failure.FaxRemoteHangup || f.Transport != inbox.G711 {
		t.Fatalf("partial: %+v %+v", f, f.Error)
	}
	// No page at all: a voice call to the fax number.
	f, err = e.s.Record(context.Background(), inbox.Reception{UniqueID: "1700.3", File: e.src.File("1700.3"), Status: "FAILED",
		Error: "NO_FAX", CallerID: "0301"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != inbox.Failed || f.Pages != 0 || f.PDF || f.TIFF || f.Error.Code != failure.FaxRemoteNotFax {
		t.Fatalf("failed: %+v %+v", f, f.Error)
	}
	if _, err := os.Stat(e.st.DocDir(string(f.ID))); !os.IsNotExist(err) {
		t.Errorf("a fax without pages has a document directory: %v", err)
	}
}

// TestRecover: at start-up the receive directory holds a TIFF whose result
// was kept in AstDB, one Asterisk left without a result, and one still
// being received; AstDB holds a result without a TIFF, and an old one. All
// but the live and the old one are recorded, once, however often Recover
// runs; every kept result but the live reception's is forgotten, the
// live one's once it is recorded.
func TestRecover(t *testing.T) {
	e := newEnv(t, nil)
	e.writeTIFF(t, "1.1", 2)
	e.writeTIFF(t, "1.2", 1)
	e.writeTIFF(t, "1.3", 1)
	e.src.kept["1.1"] = inbox.Reception{UniqueID: "1.1", File: e.src.File("1.1"), Status: "SUCCESS", Pages: 2, CallerID: "111", Kept: true}
	e.src.kept["1.4"] = inbox.Reception{UniqueID: "1.4", File: e.src.File("1.4"), Status: "FAILED", Error: "NO_FAX", CallerID: "444",
		Ended: time.Now(), Kept: true}
	// A result without its TIFF from before this data directory recorded
	// anything belongs to another (or none): forgotten, not recorded.
	e.src.kept["0.9"] = inbox.Reception{UniqueID: "0.9", File: e.src.File("0.9"), Status: "SUCCESS", Pages: 3,
		Ended: time.Now().Add(-48 * time.Hour), Kept: true}
	e.src.live["1.3"] = true
	n, err := e.s.Recover(context.Background(), e.src.dir)
	if err != nil || n != 3 {
		t.Fatalf("recover: %d %v", n, err)
	}
	byCaller := map[string]*inbox.Fax{}
	all, _, _ := e.st.ListReceived(inbox.Filter{})
	for _, f := range all {
		byCaller[f.Source] = f
		if !f.Recovered {
			t.Errorf("%s not marked recovered", f.ID)
		}
	}
	if f := byCaller["1.1"]; f == nil || f.Status != inbox.Received || f.Pages != 2 || !f.PDF || f.CallerID != "111" {
		t.Errorf("kept result: %+v", f)
	}
	if f := byCaller["1.2"]; f == nil || f.Status != inbox.Partial || f.Pages != 1 || !f.PDF || f.Error.Code != failure.LineInterrupted {
		t.Errorf("TIFF without result: %+v", f)
	}
	if f := byCaller["1.4"]; f == nil || f.Status != inbox.Failed || f.CallerID != "444" {
		t.Errorf("kept result without TIFF: %+v", f)
	}
	if byCaller["1.3"] != nil || byCaller["0.9"] != nil {
		t.Error("a reception still in progress, or an old kept result, was recorded")
	}
	if _, err := os.Stat(e.src.File("1.3")); err != nil {
		t.Errorf("the live reception's TIFF: %v", err)
	}
	e.src.kept["1.3"] = inbox.Reception{UniqueID: "1.3", File: e.src.File("1.3"), Status: "SUCCESS", Pages: 1, Kept: true}
	if k := e.src.keptUIDs(); fmt.Sprint(k) != "[1.3]" {
		t.Errorf("kept results after recovery: %v; want only the live reception's", k)
	}
	// Its call ends: the next Recover (a reconnect) records it.
	delete(e.src.live, "1.3")
	if n, err := e.s.Recover(context.Background(), e.src.dir); err != nil || n != 1 {
		t.Fatalf("second recover: %d %v", n, err)
	}
	if k := e.src.keptUIDs(); len(k) != 0 {
		t.Errorf("kept results after the live one was recorded: %v", k)
	}
	if n, _ := e.s.Recover(context.Background(), e.src.dir); n != 0 {
		t.Fatalf("third recover recorded %d", n)
	}
}

type failingRouter struct {
	mu    sync.Mutex
	fail  bool
	calls []inbox.ID
}

func (r *failingRouter) Route(_ context.Context, f *inbox.Fax, dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, f.ID)
	if _, err := os.Stat(filepath.Join(dir, inbox.PDFFile)); err != nil {
		return err
	}
	if r.fail {
		return errors.New("relay down")
	}
	return nil
}

// TestRouterIsRetried: a fax whose routing failed stays in the inbox and
// is routed again by the next Recover; once routed, never again.
func TestRouterIsRetried(t *testing.T) {
	r := &failingRouter{fail: true}
	e := newEnv(t, r)
	src := e.writeTIFF(t, "2.1", 1)
	f, err := e.s.Record(context.Background(), inbox.Reception{UniqueID: "2.1", File: src, Status: "SUCCESS", Pages: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.st.Unrouted(); len(ids) != 1 || ids[0] != f.ID {
		t.Fatalf("unrouted: %v", ids)
	}
	r.fail = false
	e.s.Recover(context.Background(), e.src.dir)
	e.s.Recover(context.Background(), e.src.dir)
	if len(r.calls) != 2 {
		t.Fatalf("routed %d times, want 2 (failed, then once more)", len(r.calls))
	}
	if ids, _ := e.st.Unrouted(); len(ids) != 0 {
		t.Fatalf("still unrouted: %v", ids)
	}
}

func TestHandleEvent(t *testing.T) {
	e := newEnv(t, nil)
	e.writeTIFF(t, "3.1", 1)
	m := ami.Message{{Key: "Event", Value: "UserEvent"}, {Key: "UserEvent", Value: "FaxboxReceived"}, {Key: "Reception", Value: "3.1"},
		{Key: "Status", Value: "SUCCESS"}, {Key: "Pages", Value: "1"}, {Key: "DID", Value: "512"}}
	if !e.s.Handle(m) || e.s.Handle(ami.Message{{Key: "Event", Value: "Hangup"}}) {
		t.Fatal("Handle claims the wrong events")
	}
	select {
	case <-e.sent:
	case <-time.After(30 * time.Second):
		t.Fatal("the event was not recorded")
	}
	all, _, _ := e.st.ListReceived(inbox.Filter{DID: "512"})
	if len(all) != 1 || all[0].Pages != 1 {
		t.Fatalf("records: %+v", all)
	}
}

func TestResolution(t *testing.T) {
	for in, want := range map[string]string{"8031x3850": "204x98", "8031x7700": "204x196", "204x98": "204x98", "": ""} {
		if got := resolution(in); got != want {
			t.Errorf("resolution(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPort(t *testing.T) {
	for in, want := range map[string]string{"DAHDI/3-1": "3", "DAHDI/i1/030-2": "", "PJSIP/trunk-0001": "", "DAHDI/12-4": "12"} {
		if got := port(in); got != want {
			t.Errorf("port(%q) = %q, want %q", in, got, want)
		}
	}
}
