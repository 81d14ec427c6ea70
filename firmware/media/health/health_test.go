package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
)

// memState is a State in memory, JSON like the store's.
type memState map[string][]byte

func (m memState) PutState(name string, v any) error {
	b, err := json.Marshal(v)
	m[name] = b
	return err
}

func (m memState) GetState(name string, v any) (bool, error) {
	b, ok := m[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

var t0 = time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)

func attempt(t38 bool, transport string, code failure.Code) *job.Attempt {
	a := &job.Attempt{T38: t38, Transport: transport, Result: job.AttemptDelivered}
	if code != "" {
		a.Result, a.Error = job.AttemptFailed, &job.Error{Code: code}
	}
	return a
}

func TestT38Rule(t *testing.T) {
	st := memState{}
	b, err := Open(st, Config{RetryT38After: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Not T.38 failures: a busy line, a voice, a G.711 fax error with
	// audio fallback, a T.38 fax error after the switch.
	b.Observe("101", attempt(true, "", failure.LineBusy), true, t0)
	b.Observe("101", attempt(true, "g711", failure.FaxRemoteNotFax), true, t0)
	b.Observe("101", attempt(true, "g711", failure.FaxTraining), false, t0)
	b.Observe("101", attempt(true, "t38", failure.FaxTraining), true, t0)
	if avoid, why := b.AvoidT38("101", t0); avoid || why != "" {
		t.Fatalf("avoid T.38 after no T.38 failure: %v %q", avoid, why)
	}
	// T.38 only, refused: the call never switched.
	b.Observe("101", attempt(true, "g711", failure.FaxTraining), true, t0)
	avoid, why := b.AvoidT38("101", t0.Add(time.Hour))
	if !avoid || !strings.HasPrefix(why, "G.711 because T.38 negotiation failed to this number on 2026-12-03 07:00 UTC") {
		t.Errorf("after the failure: %v %q", avoid, why)
	}
	if avoid, _ := b.AvoidT38("100", t0); avoid {
		t.Error("another number avoids T.38")
	}
	// Durable: a book opened again from the same state knows it.
	b2, err := Open(st, Config{RetryT38After: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if avoid, _ := b2.AvoidT38("101", t0.Add(47*time.Hour)); !avoid {
		t.Error("the record did not survive reopening")
	}
	// After RetryT38After, T.38 is tried again, and says so.
	if avoid, why := b2.AvoidT38("101", t0.Add(48*time.Hour)); avoid || !strings.HasPrefix(why, "T.38 tried again") {
		t.Errorf("after the retry time: %v %q", avoid, why)
	}
	// A delivery over T.38 clears the record.
	b2.Observe("101", attempt(true, "t38", ""), false, t0.Add(49*time.Hour))
	b3, _ := Open(st, Config{})
	if avoid, why := b3.AvoidT38("101", t0.Add(49*time.Hour)); avoid || why != "" {
		t.Errorf("after a T.38 delivery: %v %q", avoid, why)
	}
	// fax.t38_negotiation counts with or without fallback.
	b3.Observe("102", attempt(true, "g711", failure.FaxT38Negotiation), false, t0)
	if avoid, _ := b3.AvoidT38("102", t0); !avoid {
		t.Error("fax.t38_negotiation not learned")
	}
}
