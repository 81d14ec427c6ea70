package asterisk_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/dialler/diallertest"
	"github.com/faxbox/faxbox/firmware/job"
)

// replayDialler opens the trunk group's AMI dialler on a new connection
// to p, fed its events.
func replayDialler(t testing.TB, p *replayer, sink dialler.Sink) *asterisk.Dialler {
	c := p.connect()
	d, err := asterisk.New(asterisk.Config{Group: "trunk", Dial: "PJSIP/%s@trunk", Transport: "ami", RingTimeout: 6 * time.Second,
		UID: -1, GID: -1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, c, sink)
	if err != nil {
		t.Fatal(err)
	}
	go d.Run(c.Events())
	return d
}

func replayFax(id, to string) dialler.Request {
	return dialler.Request{AttemptID: id, JobID: "fx_" + id, To: to, Line: job.LineAt("trunk", 0),
		Fax: &dialler.FaxSpec{TIFF: "/var/lib/faxbox/documents/fx_" + id + "/fax.tif", FirstPage: 1, Pages: 1, TotalPages: 1, ECM: true, T38: true}}
}

// replayHarness is the Asterisk dialler over a replayer of the recorded
// transcripts: 100 delivers, 106 (G.711) is up until faxbox hangs it up.
func replayHarness(t testing.TB) diallertest.Harness {
	trs := loadTranscripts(t)
	return diallertest.Harness{
		Line: func(t testing.TB) diallertest.Open {
			p := newReplayer(t, trs)
			return func(s dialler.Sink) dialler.Dialler { return replayDialler(t, p, s) }
		},
		Deliver: func(id string) dialler.Request { return replayFax(id, "100") },
		Long: func(id string) dialler.Request {
			r := replayFax(id, "106")
			r.Fax.T38 = false
			return r
		},
		Refused: []func(string) dialler.Request{
			func(id string) dialler.Request { r := replayFax(id, "100"); r.To = "100\r\nChannel: Local/x"; return r },
			func(id string) dialler.Request {
				r := replayFax(id, "100")
				r.Fax.TIFF = "/tmp/../etc/passwd"
				return r
			},
			// Asterisk refuses the Originate (here: no transcript for 109).
			func(id string) dialler.Request { return replayFax(id, "109") },
		},
		KeepsCalls: true,
		Timeout:    5 * time.Second,
	}
}

// TestReplayConformance: the Asterisk dialler, driven by AMI traffic
// recorded on the real lab, is a dialler.Dialler (diallertest).
func TestReplayConformance(t *testing.T) {
	diallertest.Run(t, replayHarness(t))
}

// requestFor rebuilds the request a transcript was recorded for from its
// Originate, with attempt id id.
func requestFor(tr *transcript, id string) dialler.Request {
	o := tr.steps[0].action
	vs := variables(o)
	r := dialler.Request{AttemptID: id, JobID: "jb_" + id, To: tr.number, Line: job.LineAt("trunk", 0)}
	switch o.Get("Exten") {
	case "send":
		r.Fax = &dialler.FaxSpec{TIFF: "/var/lib/faxbox/documents/" + id + ".tif", FirstPage: 1, Pages: 1, TotalPages: 1, ECM: true,
			T38: !strings.HasSuffix(o.Get("Channel"), "-g711")}
	case "c2c":
		r.Call = &dialler.CallSpec{Kind: job.CallClick2Call, Agent: tr.number}
	case "msg":
		repeat, _ := strconv.Atoi(vs["FAXBOX_REPEAT"])
		r.Call = &dialler.CallSpec{Kind: job.CallMessage, Sound: "/var/lib/faxbox/sounds/" + id, Repeat: repeat, ConfirmDigit: vs["FAXBOX_DIGIT"]}
	}
	return r
}

// TestReplayResults: each recorded attempt, replayed, ends with the result
// the dialler reported on the real lab when it was recorded.
func TestReplayResults(t *testing.T) {
	trs := loadTranscripts(t)
	for num, tr := range trs {
		t.Run(num, func(t *testing.T) {
			t.Parallel()
			s := diallertest.NewSink()
			d := replayDialler(t, newReplayer(t, trs), s)
			r := requestFor(tr, "at_result_"+num)
			ctx := context.Background()
			if err := d.Dial(ctx, r); err != nil {
				t.Fatal(err)
			}
			if len(tr.steps) > 1 { // faxbox hung it up
				if err := d.Hangup(ctx, r.AttemptID); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.WaitResults(5*time.Second, r.AttemptID); err != nil {
				t.Fatal(err)
			}
			res := s.Results(r.AttemptID)[0]
			code := string(res.Code)
			if code == "" {
				code = "ok"
			}
			got := code + " pages=" + strconv.Itoa(res.PagesSent) + " answered=" + strconv.FormatBool(res.Answered)
			if got != tr.result {
				t.Errorf("%s (%s): replayed result %q, recorded %q", tr.what, tr.path, got, tr.result)
			}
			if err := s.Err(); err != nil {
				t.Error(err)
			}
		})
	}
}

// sinkFunc forwards to a sink through the functions set.
type sinkFunc struct {
	dialler.Sink
	result func(dialler.Sink, dialler.Result)
}

func (s sinkFunc) Result(r dialler.Result) { s.result(s.Sink, r) }

// brokenDialler overrides some of a working dialler's methods.
type brokenDialler struct {
	dialler.Dialler
	hangup    func(d dialler.Dialler, id string) error
	reconcile func(d dialler.Dialler, rs []dialler.Request) (map[string]bool, error)
}

func (b brokenDialler) Hangup(ctx context.Context, id string) error {
	if b.hangup != nil {
		return b.hangup(b.Dialler, id)
	}
	return b.Dialler.Hangup(ctx, id)
}

func (b brokenDialler) Reconcile(ctx context.Context, rs []dialler.Request) (map[string]bool, error) {
	if b.reconcile != nil {
		return b.reconcile(b.Dialler, rs)
	}
	return b.Dialler.Reconcile(ctx, rs)
}

// TestConformanceSuiteBites: the suite fails a dialler that breaks the
// contract — each deliberately broken wrapper around the replayed Asterisk
// dialler is caught by the check named.
func TestConformanceSuiteBites(t *testing.T) {
	var dropMu sync.Mutex
	dropped := false
	cases := []struct {
		name, check string
		sink        func(dialler.Sink, dialler.Result)
		dialler     func(dialler.Dialler) dialler.Dialler
	}{
		{name: "result doubled", check: "deliver", sink: func(s dialler.Sink, r dialler.Result) { s.Result(r); s.Result(r) }},
		{name: "result dropped", check: "concurrent", sink: func(s dialler.Sink, r dialler.Result) {
			dropMu.Lock()
			drop := !dropped
			dropped = true
			dropMu.Unlock()
			if !drop {
				s.Result(r)
			}
		}},
		{name: "result of another attempt", check: "concurrent", sink: func(s dialler.Sink, r dialler.Result) {
			if r.AttemptID == "at_cc_03" {
				r.AttemptID = "at_cc_04"
			}
			s.Result(r)
		}},
		{name: "progress after the result", check: "hangup", sink: func(s dialler.Sink, r dialler.Result) {
			s.Result(r)
			s.Progress(dialler.Progress{AttemptID: r.AttemptID, State: dialler.StateSending})
		}},
		{name: "hangup of an unknown attempt succeeds", check: "hangup unknown", dialler: func(d dialler.Dialler) dialler.Dialler {
			return brokenDialler{Dialler: d, hangup: func(dialler.Dialler, string) error { return nil }}
		}},
		{name: "reconcile reports every attempt", check: "reconcile after restart", dialler: func(d dialler.Dialler) dialler.Dialler {
			return brokenDialler{Dialler: d, reconcile: func(d dialler.Dialler, rs []dialler.Request) (map[string]bool, error) {
				alive, err := d.Reconcile(context.Background(), rs)
				for _, r := range rs {
					alive[r.AttemptID] = true
				}
				return alive, err
			}}
		}},
		{name: "reconcile adopts nothing", check: "reconcile after restart", dialler: func(d dialler.Dialler) dialler.Dialler {
			return brokenDialler{Dialler: d, reconcile: func(dialler.Dialler, []dialler.Request) (map[string]bool, error) { return map[string]bool{}, nil }}
		}},
	}
	checks := map[string]diallertest.Check{}
	for _, c := range diallertest.Checks() {
		checks[c.Name] = c
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := replayHarness(t)
			h.Timeout = time.Second
			open := h.Line
			h.Line = func(t testing.TB) diallertest.Open {
				o := open(t)
				return func(s dialler.Sink) dialler.Dialler {
					if c.sink != nil {
						s = sinkFunc{Sink: s, result: c.sink}
					}
					d := o(s)
					if c.dialler != nil {
						d = c.dialler(d)
					}
					return d
				}
			}
			err := checks[c.check].Run(t, h)
			if err == nil {
				t.Fatalf("check %q passed a dialler whose %s", c.check, c.name)
			}
			t.Logf("check %q: %v", c.check, err)
		})
	}
}

// TestKeptByLine: the dialler reads a fax's kept result under the line the
// attempt occupied (faxbox-result/<group>.<n>), and takes it only for the
// attempt it names: a later attempt's result on the line, or another
// line's, is not this attempt's. A request without a valid line is refused,
// so every fax the dialplan sends keeps its result under a line's key.
func TestKeptByLine(t *testing.T) {
	trs := loadTranscripts(t)
	s := diallertest.NewSink()
	d := replayDialler(t, newReplayer(t, trs), s)
	ctx := context.Background()
	first := replayFax("at_kept_1", "100")
	first.Line = job.LineAt("trunk", 1)
	if err := d.Dial(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitResults(5*time.Second, first.AttemptID); err != nil {
		t.Fatal(err)
	}
	got, ok := d.Kept(ctx, first)
	if !ok || got.Code != "" || got.PagesSent != 1 || !got.Answered || got.AttemptID != first.AttemptID {
		t.Fatalf("Kept(%s on %s) = %+v, %v; want the delivered result", first.AttemptID, first.Line, got, ok)
	}
	other := first
	other.Line = job.LineAt("trunk", 2)
	if got, ok := d.Kept(ctx, other); ok {
		t.Errorf("Kept on another line = %+v", got)
	}
	second := replayFax("at_kept_2", "100")
	second.Line = first.Line
	if err := d.Dial(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitResults(5*time.Second, second.AttemptID); err != nil {
		t.Fatal(err)
	}
	if got, ok := d.Kept(ctx, first); ok {
		t.Errorf("the line's next fax replaced the first's result, yet Kept(first) = %+v", got)
	}
	if _, ok := d.Kept(ctx, second); !ok {
		t.Error("Kept(second) found nothing")
	}
	for _, line := range []job.LineID{{}, {Group: "trunk"}, {Group: "Trunk", N: 1}, {Group: "trunk/x", N: 1}, {Group: "trunk", N: 100000}} {
		r := replayFax("at_kept_bad", "100")
		r.Line = line
		if err := d.Dial(ctx, r); !errors.Is(err, asterisk.ErrInvalid) {
			t.Errorf("Dial on line %+v: %v, want ErrInvalid", line, err)
		}
	}
	if err := s.Err(); err != nil {
		t.Error(err)
	}
}
