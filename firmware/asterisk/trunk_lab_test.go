//go:build lab

package asterisk_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTrunkQualifyAlarm: the box's Asterisk qualifies the SIP trunk every 2 s
// (lab); when the far end stops answering, faxbox learns it from the
// ContactStatus event and raises "trunk unqualified" (/v1/status alarms, the
// panel's alarm LED); when it answers again, the alarm clears.
func TestTrunkQualifyAlarm(t *testing.T) {
	e := startEnv(t, "qualify", 30060)
	status := func() (string, string) {
		var st struct {
			Extra map[string]any `json:"extra"`
		}
		e.c.Do(t, "GET", "/v1/status", nil, "", &st)
		return fmt.Sprint(st.Extra["trunk"]), fmt.Sprint(st.Extra["alarms"])
	}
	wait := func(want string, alarm bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			trunk, alarms := status()
			if trunk == want && strings.Contains(alarms, "trunk unqualified") == alarm {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("trunk %q alarms %s; want %q, alarm %v", trunk, alarms, want, alarm)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if trunk, alarms := status(); trunk == "unreachable" || strings.Contains(alarms, "trunk unqualified") {
		t.Fatalf("at start: trunk %s, alarms %s", trunk, alarms)
	}
	e.l.Remote.Stop()
	wait("unreachable", true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.l.Remote.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wait("reachable", false)
}
