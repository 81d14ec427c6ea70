package box

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/gpio"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/panel"
	"github.com/faxbox/faxbox/internal/testkit"
)

type fakeLEDs struct {
	mu      sync.Mutex
	leds    map[string]panel.Pattern
	presses chan gpio.Press
}

func (f *fakeLEDs) Show(m map[string]panel.Pattern) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range m {
		f.leds[k] = v
	}
}
func (f *fakeLEDs) Presses() <-chan gpio.Press { return f.presses }
func (f *fakeLEDs) Missing() []string          { return nil }
func (f *fakeLEDs) get(k string) panel.Pattern {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leds[k]
}

type fakeScreen struct {
	mu      sync.Mutex
	history []string
	keys    chan string
}

func (f *fakeScreen) Draw(rows []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.Join(rows, "|")
	if len(f.history) == 0 || f.history[len(f.history)-1] != s {
		f.history = append(f.history, s)
	}
	return nil
}
func (f *fakeScreen) Keys() <-chan string { return f.keys }

func (f *fakeScreen) waitFor(t *testing.T, what string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		for _, s := range f.history {
			if strings.Contains(s, what) {
				f.mu.Unlock()
				return
			}
		}
		f.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the LCD never showed %q; it showed %q", what, f.history)
}

// TestPanelFollowsTheBox: a fax to 99990005 shows on the panel as a line in
// use with page progress, then the result; the make-busy button stops
// dispatch on that line until it is pressed again.
func TestPanelFollowsTheBox(t *testing.T) {
	e := startBox(t, func(c *config.Config) {
		c.TestLine.Channels = 1
		c.TestLine.PageTime = job.Duration(400 * time.Millisecond)
	})
	leds := &fakeLEDs{leds: map[string]panel.Pattern{}, presses: make(chan gpio.Press, 4)}
	screen := &fakeScreen{keys: make(chan string, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.box.RunPanel(ctx, panel.New(2, 16), leds, screen, PanelHooks{})
	leds.presses <- gpio.Press{Button: "page"} // the lines page

	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.pdf", testkit.PDF(t, 3)), testkit.Field("to", "99990005"),
		testkit.Field("retry_interval", "1s"), testkit.Field("resolution", "standard"))
	screen.waitFor(t, "L1 sending 1/3", 30*time.Second)
	if p := leds.get("line:test/1"); p != panel.SlowBlink {
		t.Errorf("line LED while sending: %s", p)
	}
	screen.waitFor(t, "L1 sending 3/3", 30*time.Second) // the second attempt resumes at page 2
	e.waitStatus(t, j.ID, job.Delivered, 30*time.Second)
	leds.presses <- gpio.Press{Button: "page"}            // last result
	screen.waitFor(t, "|99990005 deliver", 5*time.Second) // cut at 16 columns

	// Make busy: nothing is dialled on the line until it is back.
	leds.presses <- gpio.Press{Button: "busy:test/1"}
	time.Sleep(200 * time.Millisecond)
	var k job.Job
	e.c.Submit(t, "/v1/faxes", &k, testkit.File("file", "a.txt", []byte("x")), testkit.Field("to", "99990001"))
	e.waitStatus(t, k.ID, job.Ready, 20*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if got := e.waitStatus(t, k.ID, job.Ready, time.Second); len(got.Attempts) != 0 {
		t.Fatal("dialled on a busied-out line")
	}
	if p := leds.get("line:test/1"); p != panel.Heartbeat {
		t.Errorf("busied-out line LED: %s", p)
	}
	leds.presses <- gpio.Press{Button: "busy:test/1"}
	e.waitStatus(t, k.ID, job.Delivered, 20*time.Second)

	// Keypad keys drive the menu.
	screen.keys <- "enter"
	screen.waitFor(t, ">Line status", 5*time.Second)
	screen.keys <- "down"
	screen.keys <- "down"
	screen.keys <- "down"
	screen.waitFor(t, ">IP settings", 5*time.Second)
	screen.keys <- "enter"
	screen.waitFor(t, "IP ", 5*time.Second)
}

// TestPanelWithoutHardware: a board whose GPIO chip and LCD are absent
// starts anyway.
func TestPanelWithoutHardware(t *testing.T) {
	e := startBox(t, func(c *config.Config) { c.Panel.Board = "pc-x86" })
	var j job.Job
	e.c.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte("x")), testkit.Field("to", "99990001"))
	e.waitStatus(t, j.ID, job.Delivered, 20*time.Second)
}
