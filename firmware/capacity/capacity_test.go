package capacity

import (
	"testing"
	"time"
)

func TestLearnAndGrowBack(t *testing.T) {
	l := New(10 * time.Minute)
	t0 := time.Unix(10000, 0)
	if got := l.Limit("107", 8, t0); got != 8 {
		t.Fatalf("nothing learned: limit %d, want 8", got)
	}
	if !l.Busy("107", 4, 8, t0) {
		t.Fatal("busy with 4 calls up under a limit of 8 must cap the number")
	}
	for _, c := range []struct {
		after time.Duration
		want  int
	}{{0, 4}, {9 * time.Minute, 4}, {10 * time.Minute, 5}, {35 * time.Minute, 7}, {40 * time.Minute, 8}, {2 * time.Hour, 8}} {
		if got := l.Limit("107", 8, t0.Add(c.after)); got != c.want {
			t.Errorf("after %s: limit %d, want %d", c.after, got, c.want)
		}
	}
	if caps := l.Caps(t0.Add(3 * time.Hour)); len(caps) != 0 {
		t.Fatalf("a cap grown back must be gone: %+v", caps)
	}
}

func TestBusyThatSaysNothing(t *testing.T) {
	l := New(time.Minute)
	t0 := time.Unix(10000, 0)
	if l.Busy("108", 0, 4, t0) {
		t.Error("busy with no other call up capped the number")
	}
	if l.Busy("108", 4, 4, t0) {
		t.Error("busy at the configured limit capped the number")
	}
	l.Busy("108", 2, 4, t0)
	if l.Busy("108", 3, 4, t0) {
		t.Error("a busy above the learned cap raised it")
	}
	if !l.Busy("108", 1, 4, t0) || l.Limit("108", 4, t0) != 1 {
		t.Error("a busy below the learned cap must lower it")
	}
}

func TestRestoreDropsCapsOfAnotherLimit(t *testing.T) {
	t0 := time.Unix(10000, 0)
	l := New(time.Hour)
	l.Busy("107", 3, 8, t0)
	l.Busy("200", 1, 2, t0)
	snap := l.Snapshot()
	limits := map[string]int{"107": 8, "200": 4} // 200's limit was changed
	r := New(time.Hour)
	r.Restore(snap, func(n string) int { return limits[n] })
	if got := r.Limit("107", 8, t0); got != 3 {
		t.Errorf("107 after restore: %d, want the learned 3", got)
	}
	if got := r.Limit("200", 4, t0); got != 4 {
		t.Errorf("200 after its limit changed: %d, want the configured 4", got)
	}
	if caps := r.Caps(t0); len(caps) != 1 || caps[0].Number != "107" || caps[0].Calls != 3 {
		t.Errorf("caps = %+v", caps)
	}
}
