package scheduler

import (
	"errors"
	"testing"
	"time"
)

func newSched(t *testing.T) *Scheduler {
	t.Helper()
	s, err := New([]*Group{
		{Name: "test", Channels: 2, Prefixes: []string{"9999000"}, Test: true},
		{Name: "local", Channels: 1, Prefixes: []string{"030"}},
		{Name: "trunk", Channels: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoute(t *testing.T) {
	s := newSched(t)
	for _, c := range []struct{ to, req, want string }{
		{"99990001", "", "test"},
		{"99990001", "trunk", "test"}, // test numbers never dial, whatever was asked
		{"0301234", "", "local"},
		{"+0301234", "", "local"},
		{"0401234", "", "trunk"},
		{"0301234", "trunk", "trunk"},
	} {
		got, err := s.Route(c.to, c.req)
		if err != nil || got != c.want {
			t.Errorf("Route(%s,%q) = %q, %v; want %q", c.to, c.req, got, err, c.want)
		}
	}
	if _, err := s.Route("0401234", "local"); !errors.Is(err, ErrNoLine) {
		t.Errorf("local accepted a number outside its prefixes: %v", err)
	}
	if _, err := s.Route("0401234", "nosuch"); !errors.Is(err, ErrNoLine) {
		t.Errorf("unknown group: %v", err)
	}
	only, _ := New([]*Group{{Name: "test", Channels: 1, Prefixes: []string{"9999000"}, Test: true}})
	if _, err := only.Route("0401234", ""); !errors.Is(err, ErrNoLine) {
		t.Errorf("with only the test line, other numbers must be refused: %v", err)
	}
}

func TestOrderAndOneCallPerNumber(t *testing.T) {
	s := newSched(t)
	t0 := time.Unix(1000, 0)
	add := func(id, to string, prio int, sendAt time.Time, seq uint64) {
		if err := s.Add(&Item{JobID: id, To: to, Group: "trunk", Priority: prio, SendAt: sendAt, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	add("a", "0401", 0, t0, 1)
	add("b", "0402", 5, t0.Add(time.Minute), 2)
	add("c", "0402", 5, t0, 3) // same number as b, earlier send_at
	add("d", "0403", 0, t0, 0)
	got := next(s)
	if len(got) != 2 || got[0].Item.JobID != "c" || got[1].Item.JobID != "d" {
		t.Fatalf("first round = %v; want c (priority 5, earlier send_at) then d (earliest arrival)", ids(got))
	}
	s.Release("trunk", got[1].Line) // d's line falls free; b is for c's number
	got2 := next(s)
	if len(got2) != 1 || got2[0].Item.JobID != "a" {
		t.Fatalf("second round = %v; want a (b waits: its number is in a call)", ids(got2))
	}
	s.Release("trunk", got[0].Line) // c ends
	got3 := next(s)
	if len(got3) != 1 || got3[0].Item.JobID != "b" {
		t.Fatalf("third round = %v; want b", ids(got3))
	}
	if s.Queued() != 0 {
		t.Fatalf("queued = %d", s.Queued())
	}
}

func TestBusyLine(t *testing.T) {
	s := newSched(t)
	if err := s.SetBusy("local", 0, true); err != nil {
		t.Fatal(err)
	}
	s.Add(&Item{JobID: "x", To: "0301", Group: "local"})
	if got := next(s); len(got) != 0 {
		t.Fatalf("a busied-out line got a call: %v", ids(got))
	}
	s.SetBusy("local", 0, false)
	if got := next(s); len(got) != 1 {
		t.Fatalf("line back in service got no call")
	}
	if err := s.SetBusy("local", 5, true); err == nil {
		t.Fatal("no error for a line that does not exist")
	}
}

func TestRemove(t *testing.T) {
	s := newSched(t)
	s.Add(&Item{JobID: "x", To: "0401", Group: "trunk"})
	s.Add(&Item{JobID: "y", To: "0402", Group: "trunk"})
	if !s.Remove("x") || s.Remove("x") {
		t.Fatal("Remove reported wrongly")
	}
	if got := next(s); len(got) != 1 || got[0].Item.JobID != "y" {
		t.Fatalf("got %v", ids(got))
	}
}

func ids(as []Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Item.JobID)
	}
	return out
}

func TestAccepts(t *testing.T) {
	s, err := New([]*Group{{Name: "test", Channels: 1, Prefixes: []string{"9999000"}, Test: true},
		{Name: "local", Channels: 1, Prefixes: []string{"0", "+49"}}, {Name: "any", Channels: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		group, to string
		want      bool
	}{
		{"local", "030123", true}, {"local", "+4930123", true}, {"local", "1234", false},
		{"any", "1234", true}, {"any", "99990001", false}, {"test", "99990001", true},
		{"test", "1234", false}, {"gone", "1234", false},
	} {
		if got := s.Accepts(c.group, c.to); got != c.want {
			t.Errorf("Accepts(%s, %s) = %v, want %v", c.group, c.to, got, c.want)
		}
	}
}

// next runs Next at a fixed time, for tests without batch waits.
func next(s *Scheduler) []Assignment {
	out, _ := s.Next(time.Unix(1000, 0))
	return out
}
