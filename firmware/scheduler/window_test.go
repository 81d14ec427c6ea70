package scheduler

import (
	"testing"
	"time"
)

func TestWindows(t *testing.T) {
	day, _ := ParseWindow("08:00-20:00")
	night, _ := ParseWindow("22:00-06:00")
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, time.UTC) }
	for _, c := range []struct {
		ws   []Window
		t    time.Time
		open bool
		next time.Time
	}{
		{nil, at(3, 0), true, at(3, 0)},
		{[]Window{day}, at(7, 59), false, at(8, 0)},
		{[]Window{day}, at(8, 0), true, at(8, 0)},
		{[]Window{day}, at(20, 0), false, at(8, 0).AddDate(0, 0, 1)},
		{[]Window{night}, at(23, 0), true, at(23, 0)},
		{[]Window{night}, at(5, 59), true, at(5, 59)},
		{[]Window{night}, at(12, 0), false, at(22, 0)},
		{[]Window{day, night}, at(21, 0), false, at(22, 0)},
	} {
		open, next := Open(c.ws, c.t)
		if open != c.open || (!open && !next.Equal(c.next)) {
			t.Errorf("Open(%v, %s) = %v %s; want %v %s", c.ws, c.t.Format("15:04"), open, next, c.open, c.next)
		}
	}
	for _, bad := range []string{"8-20", "25:00-26:00", "08:00-08:00", "x"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
