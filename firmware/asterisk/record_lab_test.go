//go:build lab

package asterisk_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/dialler/diallertest"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

// amiRecorder is an asterisk.Manager over a real client that writes down,
// while on, every action the dialler sends, Asterisk's answers and the
// events, in the order they pass through it.
type amiRecorder struct {
	c    *ami.Client
	mu   sync.Mutex
	on   bool
	msgs []ami.Message
}

// add appends m while recording and returns its index (-1 when off).
func (r *amiRecorder) add(m ami.Message) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return -1
	}
	r.msgs = append(r.msgs, m)
	return len(r.msgs) - 1
}

// answered gives the action at index i the ActionID Asterisk echoed and
// appends the response and its list items.
func (r *amiRecorder) answered(i int, resp ami.Message, items []ami.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < 0 || !r.on || resp == nil {
		return
	}
	a := r.msgs[i]
	r.msgs[i] = append(ami.Message{a[0], {Key: "ActionID", Value: resp.Get("ActionID")}}, a[1:]...)
	r.msgs = append(r.msgs, resp)
	r.msgs = append(r.msgs, items...)
}

// Action implements asterisk.Manager.
func (r *amiRecorder) Action(ctx context.Context, name string, hs ...ami.Header) (ami.Message, error) {
	i := r.add(action(name, hs))
	m, err := r.c.Action(ctx, name, hs...)
	r.answered(i, m, nil)
	return m, err
}

// List implements asterisk.Manager.
func (r *amiRecorder) List(ctx context.Context, name string, hs ...ami.Header) (ami.Message, []ami.Message, error) {
	i := r.add(action(name, hs))
	m, items, err := r.c.List(ctx, name, hs...)
	r.answered(i, m, items)
	return m, items, err
}

func (r *amiRecorder) start(meta ami.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.msgs = true, []ami.Message{meta}
}

func (r *amiRecorder) stop() []ami.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.msgs
}

// amiScenario is one attempt recorded into testdata/ami/<file>.
type amiScenario struct {
	file, what string
	req        dialler.Request
	// hangupAfter: faxbox hangs the attempt up this long after the fax
	// session started (listing the channels first, as a restarted faxbox
	// does).
	hangupAfter time.Duration
	// kept: after the Result, read the result the dialplan kept in AstDB
	// (under the attempt's line).
	kept bool
}

func amiScenarios(tif, sound string) []amiScenario {
	fax := func(to string) dialler.Request {
		return dialler.Request{AttemptID: "at_rec_" + to, JobID: "fx_rec_" + to, To: to, Line: job.LineAt(lab.TrunkName, 0),
			Fax: &dialler.FaxSpec{TIFF: tif, FirstPage: 1, Pages: 1, TotalPages: 1, StationID: "FAXBOX LAB", ECM: true, T38: true}}
	}
	g711 := fax("106")
	g711.Fax.T38 = false
	call := func(to string, spec dialler.CallSpec) dialler.Request {
		return dialler.Request{AttemptID: "at_rec_" + to, JobID: "cl_rec_" + to, To: to, Line: job.LineAt(lab.TrunkName, 0), Call: &spec}
	}
	return []amiScenario{
		{file: "100-fax-delivered.txt", what: "fax to 100 (T.38), delivered", req: fax("100"), kept: true},
		{file: "106-fax-hungup.txt", what: "fax to 106 (G.711, slow), hung up by faxbox while sending", req: g711, hangupAfter: 3 * time.Second},
		{file: "102-fax-busy.txt", what: "fax to 102, busy", req: fax("102")},
		{file: "103-fax-noanswer.txt", what: "fax to 103, rings without answer (ring timeout 6 s)", req: fax("103")},
		{file: "200-click2call.txt", what: "click2call, agent 200 then customer 200, bridged", req: call("200", dialler.CallSpec{Kind: job.CallClick2Call, Agent: "200"})},
		{file: "201-message-acked.txt", what: "message to 201, acknowledged with 1", req: call("201", dialler.CallSpec{Kind: job.CallMessage, Sound: sound, Repeat: 1, ConfirmDigit: "1"})},
	}
}

// TestRecordAMI places each recorded attempt on the real lab through the
// AMI dialler. With FAXBOX_RECORD_AMI=1 it writes the transcripts to
// testdata/ami (make record-ami); otherwise it checks that each fresh
// transcript has the committed one's shape (its events' names in order,
// and the same result), so a change in Asterisk's traffic shows up here.
func TestRecordAMI(t *testing.T) {
	testkit.Require(t, "sox")
	_, cfg, tif := directLab(t, "recami", 35060)
	a := cfg.Asterisk
	sound := filepath.Join(filepath.Dir(tif), "message")
	if b, err := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", sound+".wav", "trim", "0", "6").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v\n%s", err, b)
	}
	client, err := ami.Dial(context.Background(), ami.Config{Addr: a.AMIAddr, Username: a.AMIUser, Secret: a.AMISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rec := &amiRecorder{c: client}
	sink := diallertest.NewSink()
	d, err := asterisk.New(asterisk.Config{Group: lab.TrunkName, Dial: cfg.LineGroups[0].Dial, Transport: "ami", RingTimeout: 6 * time.Second, UID: -1, GID: -1}, rec, sink)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range client.Events() {
			rec.add(m)
			d.Handle(m)
		}
	}()
	write := os.Getenv("FAXBOX_RECORD_AMI") == "1"
	for _, sc := range amiScenarios(tif, sound) {
		t.Run(sc.file, func(t *testing.T) {
			msgs := recordScenario(t, d, rec, sink, sc)
			path := filepath.Join("testdata", "ami", sc.file)
			if write {
				if err := os.WriteFile(path, []byte(formatTranscript(msgs)), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			fresh, err := parseTranscript(strings.NewReader(formatTranscript(msgs)))
			if err != nil {
				t.Fatalf("the fresh recording: %v", err)
			}
			old, err := loadTranscript(path)
			if err != nil {
				t.Fatalf("%v (make record-ami writes it)", err)
			}
			if got, want := fresh.shape(), old.shape(); !slices.Equal(got, want) {
				t.Errorf("Asterisk's traffic changed for %s (make record-ami records it again):\nnow:       %s\ncommitted: %s", sc.what, strings.Join(got, " "), strings.Join(want, " "))
			}
			if fresh.result != old.result {
				t.Errorf("%s: the dialler's result is now %q, committed %q", sc.what, fresh.result, old.result)
			}
		})
	}
}

// recordScenario runs one attempt and returns its transcript: a header
// (what it is, the ids to rewrite, the dialler's result), then the traffic.
func recordScenario(t *testing.T, d *asterisk.Dialler, rec *amiRecorder, sink *diallertest.Sink, sc amiScenario) []ami.Message {
	r := sc.req
	ctx := context.Background()
	meta := ami.Message{{Key: "Transcript", Value: sc.what}, {Key: "Number", Value: r.To}, {Key: "Attempt", Value: r.AttemptID}, {Key: "Job", Value: r.JobID}}
	if r.Fax != nil {
		meta = append(meta, ami.Header{Key: "File", Value: r.Fax.TIFF})
	} else if r.Call.Sound != "" {
		meta = append(meta, ami.Header{Key: "Sound", Value: r.Call.Sound})
	}
	rec.start(meta)
	defer rec.stop()
	if err := d.Dial(ctx, r); err != nil {
		t.Fatal(err)
	}
	if sc.hangupAfter > 0 {
		sending := sink.WaitFor(time.Minute, func(s *diallertest.Sink) bool {
			return slices.ContainsFunc(s.Progresses(r.AttemptID), func(p dialler.Progress) bool { return p.State == dialler.StateSending })
		})
		if !sending {
			t.Fatalf("%s never started sending: %+v %+v", r.AttemptID, sink.Progresses(r.AttemptID), sink.Results(r.AttemptID))
		}
		time.Sleep(sc.hangupAfter)
		if _, _, err := rec.List(ctx, "CoreShowChannels"); err != nil {
			t.Fatal(err)
		}
		if err := d.Hangup(ctx, r.AttemptID); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.WaitResults(3*time.Minute, r.AttemptID); err != nil {
		t.Fatal(err)
	}
	if sc.kept {
		rec.List(ctx, "DBGet", ami.Header{Key: "Family", Value: "faxbox-result"}, ami.Header{Key: "Key", Value: r.Line.Group + "." + strconv.Itoa(r.Line.N)})
	}
	time.Sleep(2 * time.Second) // the other legs' last events
	res := sink.Results(r.AttemptID)[0]
	code := string(res.Code)
	if code == "" {
		code = "ok"
	}
	meta = append(meta, ami.Header{Key: "Result", Value: code + " pages=" + strconv.Itoa(res.PagesSent) + " answered=" + strconv.FormatBool(res.Answered)})
	msgs := ownTraffic(r.AttemptID, rec.stop())
	msgs[0] = meta
	return msgs
}

// periodic events come at a rate, not at a point of the call: their number
// depends on timing, so they are not part of a transcript's shape.
var periodic = map[string]bool{"RTCPSent": true, "RTCPReceived": true}

// shape is what must stay the same between two recordings of one attempt:
// for each of its channels and bridges (in the order they appear), the
// names of their events in order, with "|Action" where faxbox sent one of
// the attempt's own actions, and the originate's answer apart. Events of
// different lanes interleave as Asterisk's threads run (OriginateResponse
// comes before or after the channel's DialEnd, a busy call's Hangup before
// or after it), so their relative order is not part of it (the originate's
// lane is listed last); periodic events are left out.
func (tr *transcript) shape() []string {
	var events []ami.Message
	for _, s := range tr.steps {
		events = append(events, s.events...)
	}
	lane := lanes(tr.attempt, events)
	var names []string
	labels := map[string][]string{}
	for i, s := range tr.steps {
		if i > 0 {
			for _, n := range names {
				labels[n] = append(labels[n], "|"+s.action.Get("Action"))
			}
		}
		for _, e := range s.events {
			n := lane(e)
			if n == "" || periodic[e.Event()] {
				continue
			}
			if _, ok := labels[n]; !ok {
				names = append(names, n)
			}
			labels[n] = append(labels[n], eventLabel(e))
		}
	}
	// The originate's answer comes before or after the other legs'
	// channels appear (Asterisk's threads): its lane goes last.
	if i := slices.Index(names, "originate"); i >= 0 {
		names = append(append(names[:i:i], names[i+1:]...), "originate")
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + ": " + strings.Join(unrace(labels[n]), " ")
	}
	return out
}

// racing are events of one channel that two of Asterisk's threads raise
// for one step of the call: the dialling thread's DialState and the
// channel's own Newstate both report the far end ringing, in either order.
var racing = map[string]bool{"DialState": true, "Newstate": true}

// unrace sorts each run of adjacent racing labels in a lane, so the order
// the threads happened to run in is not part of the shape; every other
// label keeps its place.
func unrace(labels []string) []string {
	out := slices.Clone(labels)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && racing[out[j]] {
			j++
		}
		if j > i {
			slices.Sort(out[i:j])
			i = j
			continue
		}
		i++
	}
	return out
}

// eventLabel is an event's name, with its kind for the events that have
// one (UserEvent(FaxboxResult), FAXStatus(T.38 Negotiated)).
func eventLabel(e ami.Message) string {
	kind := map[string]string{"UserEvent": "UserEvent", "TestEvent": "State", "FAXStatus": "Status", "OriginateResponse": "Response"}[e.Event()]
	if v := e.Get(kind); kind != "" && v != "" {
		return e.Event() + "(" + v + ")"
	}
	return e.Event()
}

// lanes returns the lane of an event among events, those of an attempt:
// "originate" for the originate's answer, "channel N" for the attempt's
// channels (its own and those linked to it), "bridge N" for the bridges
// they enter, "" for the rest.
func lanes(attempt string, events []ami.Message) func(ami.Message) string {
	uids, chans, bridges := map[string]string{}, map[string]string{}, map[string]string{}
	nc, nb := 0, 0
	own := func(uid, linked, ch string) {
		if uid == "" || (uid != attempt && linked != attempt) {
			return
		}
		if uids[uid] == "" {
			nc++
			uids[uid] = fmt.Sprintf("channel %d", nc)
		}
		if ch != "" {
			chans[ch] = uids[uid]
		}
	}
	for _, e := range events {
		own(e.Get("Uniqueid"), e.Get("Linkedid"), e.Get("Channel"))
		own(e.Get("DestUniqueid"), e.Get("DestLinkedid"), e.Get("DestChannel"))
		if b := e.Get("BridgeUniqueid"); b != "" && uids[e.Get("Uniqueid")] != "" && bridges[b] == "" {
			nb++
			bridges[b] = fmt.Sprintf("bridge %d", nb)
		}
	}
	return func(e ami.Message) string {
		if e.Event() == "OriginateResponse" && e.Get("Uniqueid") == attempt {
			return "originate"
		}
		for _, n := range []string{uids[e.Get("Uniqueid")], uids[e.Get("DestUniqueid")], chans[e.Get("Channel")], chans[e.Get("DestChannel")], bridges[e.Get("BridgeUniqueid")]} {
			if n != "" {
				return n
			}
		}
		return ""
	}
}

// ownTraffic returns msgs without the events that are not attempt's: of
// none of its channels or bridges, and no answer to an action.
func ownTraffic(attempt string, msgs []ami.Message) []ami.Message {
	lane := lanes(attempt, msgs)
	var out []ami.Message
	for _, m := range msgs {
		if m.Has("Event") && !m.Has("ActionID") && lane(m) == "" {
			continue
		}
		out = append(out, m)
	}
	return out
}

// formatTranscript renders msgs in AMI wire format (LF line ends).
func formatTranscript(msgs []ami.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(strings.ReplaceAll(m.String(), "\r\n", "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// TestUnrace: the two orders CI saw for a ringing call's channel give one
// shape; an order change of any other event still shows.
func TestUnrace(t *testing.T) {
	a := strings.Fields("Newchannel NewCallerid NewConnectedLine DialBegin DialState Newstate Hangup")
	b := strings.Fields("Newchannel NewCallerid NewConnectedLine DialBegin Newstate DialState Hangup")
	if !slices.Equal(unrace(a), unrace(b)) {
		t.Errorf("racing DialState/Newstate still differ: %v vs %v", unrace(a), unrace(b))
	}
	c := strings.Fields("Newchannel NewCallerid NewConnectedLine Newstate DialBegin DialState Hangup")
	if slices.Equal(unrace(a), unrace(c)) {
		t.Errorf("DialBegin moving past Newstate no longer shows: %v", unrace(c))
	}
	if !slices.Equal(a, strings.Fields("Newchannel NewCallerid NewConnectedLine DialBegin DialState Newstate Hangup")) {
		t.Errorf("unrace changed its argument: %v", a)
	}
}
