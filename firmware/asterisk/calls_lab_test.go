//go:build lab

package asterisk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/tools/lab"
)

func (e *env) call(t *testing.T, body map[string]any) (*job.Job, int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	var raw json.RawMessage
	r := e.c.Do(t, "POST", "/v1/calls", bytes.NewReader(b), "application/json", &raw)
	var j job.Job
	var m map[string]any
	json.Unmarshal(raw, &j)
	json.Unmarshal(raw, &m)
	return &j, r.StatusCode, m
}

func (e *env) waitCall(t *testing.T, id string, want job.Status, d time.Duration) *job.Job {
	t.Helper()
	return e.c.WaitJob(t, "/v1/calls/"+id, want, d, true)
}

func hookEvents(hs []testkit.Hook, id string) []string {
	var out []string
	for _, ev := range testkit.Events(hs, id) {
		out = append(out, ev.Event)
	}
	return out
}

// TestRealCalls places click-to-call and alert calls through the real
// Asterisk lab.
func TestRealCalls(t *testing.T) {
	testkit.Require(t, "espeak-ng", "sox")
	e := startEnv(t, "calltest", 26060)
	rcv := testkit.NewReceiver(t)

	// Watch the box's bridges through AMI.
	mon, err := ami.Dial(context.Background(), ami.Config{Addr: e.l.Box.AMIAddr(), Username: lab.BoxAMIUser, Secret: lab.BoxAMISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	var bmu sync.Mutex
	bridges := map[string]map[string]bool{}
	go func() {
		for m := range mon.Events() {
			if m.Event() == "BridgeEnter" {
				bmu.Lock()
				id := m.Get("BridgeUniqueid")
				if bridges[id] == nil {
					bridges[id] = map[string]bool{}
				}
				bridges[id][m.Get("Channel")] = true
				bmu.Unlock()
			}
		}
	}()

	t.Run("group", func(t *testing.T) {
		t.Run("click2call 200 to 200 is bridged", func(t *testing.T) {
			t.Parallel()
			j, code, _ := e.call(t, map[string]any{"kind": "click2call", "agent": "200", "to": "200", "callback_url": rcv.URL, "max_attempts": 1})
			if code != 202 {
				t.Fatalf("POST /v1/calls: %d", code)
			}
			got := e.waitCall(t, j.ID, job.Delivered, 2*time.Minute)
			if a := got.LastAttempt(); a.TalkSeconds < 3 {
				t.Errorf("talk seconds %d", a.TalkSeconds)
			}
			hs := rcv.Wait(t, 20*time.Second, "call.completed", func(hs []testkit.Hook) bool {
				ev := hookEvents(hs, j.ID)
				return len(ev) >= 2
			})
			if ev := strings.Join(hookEvents(hs, j.ID), ","); ev != "call.answered,call.completed" {
				t.Errorf("events %s", ev)
			}
			bmu.Lock()
			two := false
			for _, chans := range bridges {
				two = two || len(chans) == 2
			}
			bmu.Unlock()
			if !two {
				t.Errorf("no bridge with two channels seen through AMI BridgeEnter: %v", bridges)
			}
		})
		t.Run("agent 203 does not answer: customer never dialled", func(t *testing.T) {
			t.Parallel()
			before, _ := e.l.Calls("202")
			j, _, _ := e.call(t, map[string]any{"kind": "click2call", "agent": "203", "to": "202", "max_attempts": 1})
			got := e.waitCall(t, j.ID, job.Failed, 2*time.Minute)
			if got.Error.Code != "call.agent_no_answer" {
				t.Fatalf("error %+v", got.Error)
			}
			if after, _ := e.l.Calls("202"); after != before {
				t.Errorf("the customer was dialled")
			}
		})
		t.Run("message say to 201 is acknowledged", func(t *testing.T) {
			t.Parallel()
			j, code, m := e.call(t, map[string]any{"kind": "message", "to": "201", "say": "Disk full on the mail server. Press 1 to acknowledge.", "confirm_digit": "1", "callback_url": rcv.URL, "max_attempts": 1})
			if code != 202 {
				t.Fatalf("POST: %d %v", code, m)
			}
			got := e.waitCall(t, j.ID, job.Delivered, 2*time.Minute)
			if a := got.LastAttempt(); a.Digit != "1" {
				t.Errorf("digit %q", a.Digit)
			}
			hs := rcv.Wait(t, 20*time.Second, "call.acknowledged", func(hs []testkit.Hook) bool { return len(hookEvents(hs, j.ID)) >= 2 })
			if ev := strings.Join(hookEvents(hs, j.ID), ","); ev != "call.answered,call.acknowledged" {
				t.Errorf("events %s", ev)
			}
		})
		t.Run("message with an uploaded MP3 recording to 201", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			wav, mp3 := filepath.Join(dir, "a.wav"), filepath.Join(dir, "a.mp3")
			if out, err := exec.Command("espeak-ng", "-w", wav, "This is a recorded alert").CombinedOutput(); err != nil {
				t.Fatalf("espeak-ng: %v %s", err, out)
			}
			if out, err := exec.Command("sox", wav, mp3).CombinedOutput(); err != nil {
				t.Fatalf("sox mp3: %v %s", err, out)
			}
			rec, _ := os.ReadFile(mp3)
			var j job.Job
			r := e.c.Submit(t, "/v1/calls", &j, testkit.Field("kind", "message"), testkit.Field("to", "201"), testkit.Field("confirm_digit", "1"),
				testkit.Field("max_attempts", "1"), testkit.File("play", "alert.mp3", rec))
			if r.StatusCode != 202 {
				t.Fatalf("POST multipart: %d", r.StatusCode)
			}
			got := e.waitCall(t, j.ID, job.Delivered, 2*time.Minute)
			if got.LastAttempt().Digit != "1" || got.Call.Play == "" {
				t.Fatalf("recording call: %+v", got.LastAttempt())
			}
			var er struct{ Error struct{ Code string } }
			r = e.c.Submit(t, "/v1/calls", &er, testkit.Field("kind", "message"), testkit.Field("to", "201"), testkit.File("play", "x.mp3", []byte("not audio at all")))
			if r.StatusCode != 415 || er.Error.Code != "unsupported_recording" {
				t.Errorf("bad recording: %d %+v", r.StatusCode, er)
			}
		})
		t.Run("message to 203 falls back to 204 then 201", func(t *testing.T) {
			t.Parallel()
			j, _, _ := e.call(t, map[string]any{"kind": "message", "to": "203", "say": "Alert.", "confirm_digit": "1", "fallback_to": []string{"204", "201"}})
			got := e.waitCall(t, j.ID, job.Delivered, 3*time.Minute)
			var nums []string
			for _, a := range got.Attempts {
				nums = append(nums, a.Number)
			}
			if strings.Join(nums, ",") != "203,204,201" || got.LastAttempt().Digit != "1" {
				b, _ := json.Marshal(got.Attempts)
				t.Fatalf("attempts %s", b)
			}
		})
		t.Run("compat callback URL places the click-to-call", func(t *testing.T) {
			t.Parallel()
			c := &testkit.Client{Base: e.c.Base}
			var j job.Job
			r := c.Do(t, "GET", "/callback?num=204&cid=200&c=from-internal&p=1", nil, "", &j)
			if r.StatusCode != 202 || j.Call == nil || j.Call.Agent != "200" || j.To != "204" {
				t.Fatalf("callback: %d %+v", r.StatusCode, j)
			}
			e.waitCall(t, j.ID, job.Delivered, 2*time.Minute)
			if r := c.Do(t, "GET", "/callback?num=204&cid=200&c=default", nil, "", nil); r.StatusCode != http.StatusForbidden {
				t.Errorf("a context not configured: %d", r.StatusCode)
			}
		})
	})
	t.Run("inbound callback", func(t *testing.T) { testInboundCallback(t, e) })
	t.Run("hostile input through every entry point", func(t *testing.T) {
		before := map[string]int{}
		for _, n := range []string{"200", "201", "204"} {
			before[n], _ = e.l.Calls(n)
		}
		for name, body := range map[string]map[string]any{
			"CRLF in to":               {"kind": "message", "to": "201\r\nChannel: Local/1", "say": "x"},
			"dialplan in to":           {"kind": "message", "to": "${SHELL(id)}", "say": "x"},
			"ampersand in agent":       {"kind": "click2call", "agent": "200&PJSIP/201", "to": "201"},
			"comma in to":              {"kind": "click2call", "agent": "200", "to": "201,t"},
			"international":            {"kind": "message", "to": "0044201", "say": "x"},
			"plus international":       {"kind": "click2call", "agent": "200", "to": "+44201"},
			"premium":                  {"kind": "message", "to": "0900123456", "say": "x"},
			"premium fallback":         {"kind": "message", "to": "201", "say": "x", "fallback_to": []string{"0190123"}},
			"digit not a key":          {"kind": "message", "to": "201", "say": "x", "confirm_digit": "1,2"},
			"CR in say":                {"kind": "message", "to": "201", "say": "a\rb"},
			"unknown kind":             {"kind": "system", "to": "201"},
			"unknown field":            {"kind": "message", "to": "201", "say": "x", "Variable": "SHELL=1"},
			"callback url not http":    {"kind": "message", "to": "201", "say": "x", "callback_url": "file:///etc/passwd"},
			"agent with dialplan text": {"kind": "click2call", "agent": "${EXTEN}", "to": "201"},
		} {
			_, code, m := e.call(t, body)
			if code < 400 || code > 499 {
				t.Errorf("%s: HTTP %d %v", name, code, m)
			}
		}
		c := &testkit.Client{Base: e.c.Base}
		for _, q := range []string{"num=0900123&cid=200", "num=201%0d%0aChannel:x&cid=200", "num=201&cid=200%26PJSIP/1", "num=0044201&cid=200"} {
			if r := c.Do(t, "GET", "/callback?"+q, nil, "", nil); r.StatusCode < 400 || r.StatusCode > 499 {
				t.Errorf("/callback?%s: %d", q, r.StatusCode)
			}
		}
		time.Sleep(2 * time.Second)
		for n, b := range before {
			if after, _ := e.l.Calls(n); after != b {
				t.Errorf("%s was called %d times by refused requests", n, after-b)
			}
		}
	})
}

// callbackJob waits for the callback job to caller and its end.
func (e *env) callbackJob(t *testing.T, caller string, want job.Status) *job.Job {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var list struct{ Items []job.Job }
		e.c.Do(t, "GET", "/v1/calls?limit=50", nil, "", &list)
		for _, j := range list.Items {
			if j.To == caller && j.Call != nil && j.Call.Kind == "callback" && j.Status.Terminal() {
				if j.Status != want {
					b, _ := json.Marshal(j)
					t.Fatalf("callback to %s: %s", caller, b)
				}
				return &j
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no finished callback job to %s", caller)
	return nil
}

func testInboundCallback(t *testing.T, e *env) {
	ctx := context.Background()
	before200, _ := e.l.Calls("200")
	t.Run("allowed caller: PIN, destination 200, bridged", func(t *testing.T) {
		if err := e.l.CallBox(ctx, "5000", "300"); err != nil {
			t.Fatal(err)
		}
		j := e.callbackJob(t, "300", job.Delivered)
		if a := j.LastAttempt(); a.TalkSeconds < 2 {
			t.Errorf("talk seconds %d", a.TalkSeconds)
		}
		if after, _ := e.l.Calls("200"); after != before200+1 {
			t.Errorf("200 called %d times", after-before200)
		}
	})
	t.Run("wrong PIN three times: hung up, nothing dialled", func(t *testing.T) {
		b200, _ := e.l.Calls("200")
		e.l.CallBox(ctx, "5000", "301")
		j := e.callbackJob(t, "301", job.Failed)
		if j.Error.Code != "call.pin_rejected" {
			t.Errorf("error %+v", j.Error)
		}
		if after, _ := e.l.Calls("200"); after != b200 {
			t.Error("something was dialled")
		}
	})
	t.Run("premium destination refused", func(t *testing.T) {
		e.l.CallBox(ctx, "5000", "302")
		j := e.callbackJob(t, "302", job.Failed)
		if j.Error.Code != "call.destination_refused" {
			t.Errorf("error %+v", j.Error)
		}
	})
	t.Run("unknown caller id: no callback", func(t *testing.T) {
		b, _ := e.l.Calls("399")
		e.l.CallBox(ctx, "5000", "399")
		time.Sleep(8 * time.Second)
		if after, _ := e.l.Calls("399"); after != b {
			t.Error("an unknown caller was called back")
		}
	})
}
