//go:build gpiosim

// These tests run inside qemu against the kernel's gpio-sim (see
// tools/qemu-gpio and qemu_test.go, which builds this file with -tags gpiosim).
package gpio

import (
	"testing"
	"time"

	"github.com/faxbox/faxbox/board"
	"github.com/faxbox/faxbox/firmware/panel"
	"github.com/warthog618/go-gpiosim"
)

func sim(t *testing.T) *gpiosim.Simpleton {
	s, err := gpiosim.NewSimpleton(8)
	if err != nil {
		t.Fatalf("gpio-sim: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func level(t *testing.T, s *gpiosim.Simpleton, off int) int {
	v, err := s.Level(off)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLEDsOnGPIOSim(t *testing.T) {
	s := sim(t)
	chip := s.ChipName()
	p := Open(Config{LEDs: map[string]board.Pin{
		"power":    {Chip: chip, Line: 0},
		"alarm":    {Chip: chip, Line: 1, ActiveLow: true},
		"activity": {Chip: chip, Line: 2},
	}, Tick: 10 * time.Millisecond})
	defer p.Close()
	p.Show(map[string]panel.Pattern{"power": panel.On, "alarm": panel.On, "activity": panel.Off})
	time.Sleep(100 * time.Millisecond)
	if level(t, s, 0) != 1 || level(t, s, 1) != 0 || level(t, s, 2) != 0 {
		t.Fatalf("levels: power %d, alarm (active low) %d, activity %d", level(t, s, 0), level(t, s, 1), level(t, s, 2))
	}
	// Blinking, measured against the wall clock (the guest is emulated, so
	// sampling is slow): count level changes over 2 s.
	count := func() (changes int, highFrac float64) {
		prev, high, n := -1, 0, 0
		for start := time.Now(); time.Since(start) < 2*time.Second; n++ {
			v := level(t, s, 0)
			if prev >= 0 && v != prev {
				changes++
			}
			high += v
			prev = v
			time.Sleep(5 * time.Millisecond)
		}
		return changes, float64(high) / float64(n)
	}
	p.Show(map[string]panel.Pattern{"power": panel.SlowBlink})
	time.Sleep(50 * time.Millisecond)
	if c, h := count(); c < 3 || c > 5 || h < 0.35 || h > 0.65 {
		t.Fatalf("slow blink (1 Hz) over 2 s: %d changes (want 4), high %.2f of the time", c, h)
	}
	p.Show(map[string]panel.Pattern{"power": panel.FastBlink})
	time.Sleep(50 * time.Millisecond)
	if c, _ := count(); c < 13 || c > 17 {
		t.Fatalf("fast blink (4 Hz) over 2 s: %d changes, want 16", c)
	}
	p.Show(map[string]panel.Pattern{"power": panel.Heartbeat})
	time.Sleep(50 * time.Millisecond)
	if c, _ := count(); c < 5 || c > 8 {
		t.Fatalf("heartbeat over 2 s: %d changes, want about 6.7", c)
	}
}

func TestButtonsOnGPIOSim(t *testing.T) {
	s := sim(t)
	chip := s.ChipName()
	for _, off := range []int{4, 5} {
		s.Pulldown(off)
	}
	p := Open(Config{Buttons: map[string]board.Pin{
		"retry": {Chip: chip, Line: 4},
		"reset": {Chip: chip, Line: 5},
	}, Debounce: 20 * time.Millisecond, LongPress: 400 * time.Millisecond})
	defer p.Close()
	next := func(d time.Duration) (Press, bool) {
		select {
		case pr := <-p.Presses():
			return pr, true
		case <-time.After(d):
			return Press{}, false
		}
	}
	// A clean press.
	s.Pullup(4)
	time.Sleep(100 * time.Millisecond)
	s.Pulldown(4)
	if pr, ok := next(time.Second); !ok || pr.Button != "retry" || pr.Long {
		t.Fatalf("press: %+v %v", pr, ok)
	}
	// A bounce burst: one press.
	for i := 0; i < 6; i++ {
		s.Pullup(4)
		time.Sleep(2 * time.Millisecond)
		s.Pulldown(4)
		time.Sleep(2 * time.Millisecond)
	}
	s.Pullup(4)
	time.Sleep(100 * time.Millisecond)
	s.Pulldown(4)
	if pr, ok := next(time.Second); !ok || pr.Button != "retry" {
		t.Fatalf("bounced press: %+v %v", pr, ok)
	}
	if pr, ok := next(300 * time.Millisecond); ok {
		t.Fatalf("the bounce burst counted twice: %+v", pr)
	}
	// A long press on reset.
	s.Pullup(5)
	pr, ok := next(2 * time.Second)
	s.Pulldown(5)
	if !ok || pr.Button != "reset" || !pr.Long {
		t.Fatalf("long press: %+v %v", pr, ok)
	}
	if pr, ok := next(300 * time.Millisecond); ok {
		t.Fatalf("a release after a long press reported %+v", pr)
	}
}

func TestMissingLine(t *testing.T) {
	s := sim(t)
	p := Open(Config{
		LEDs:    map[string]board.Pin{"power": {Chip: s.ChipName(), Line: 0}, "alarm": {Chip: s.ChipName(), Line: 42}},
		Buttons: map[string]board.Pin{"page": {Chip: "gpiochip99", Line: 1}},
	})
	defer p.Close()
	if len(p.Missing()) != 2 {
		t.Fatalf("missing: %v", p.Missing())
	}
	p.Show(map[string]panel.Pattern{"power": panel.On})
	time.Sleep(100 * time.Millisecond)
	if level(t, s, 0) != 1 {
		t.Fatal("the LED that exists does not work")
	}
}
