// Package gpio drives the front panel's LEDs and buttons through the Linux
// GPIO character device (go-gpiocdev): LEDs follow panel patterns from one
// ticker, buttons report debounced presses and long presses. A missing chip
// or line is logged and reported (Missing), never fatal: the panel goes on
// with what it has.
package gpio

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/faxbox/faxbox/board"
	"github.com/faxbox/faxbox/firmware/panel"
	"github.com/warthog618/go-gpiocdev"
)

// Press is a button event.
type Press struct {
	Button string
	Long   bool
}

// Config of the panel's GPIO.
type Config struct {
	LEDs      map[string]board.Pin
	Buttons   map[string]board.Pin
	Debounce  time.Duration // default 30 ms
	LongPress time.Duration // default 10 s (the reset button)
	Tick      time.Duration // LED ticker, default 25 ms
	Log       *slog.Logger
}

// Panel is the open GPIO lines.
type Panel struct {
	cfg     Config
	leds    map[string]*gpiocdev.Line
	buttons map[string]*gpiocdev.Line
	presses chan Press
	missing []string

	mu       sync.Mutex
	patterns map[string]panel.Pattern
	down     map[string]time.Time
	stop     chan struct{}
	wg       sync.WaitGroup
	start    time.Time
}

// Open requests every LED and button line it can.
func Open(cfg Config) *Panel {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 30 * time.Millisecond
	}
	if cfg.LongPress <= 0 {
		cfg.LongPress = 10 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 25 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Panel{cfg: cfg, leds: map[string]*gpiocdev.Line{}, buttons: map[string]*gpiocdev.Line{}, presses: make(chan Press, 16),
		patterns: map[string]panel.Pattern{}, down: map[string]time.Time{}, stop: make(chan struct{}), start: time.Now()}
	for name, pin := range cfg.LEDs {
		opts := []gpiocdev.LineReqOption{gpiocdev.AsOutput(0), gpiocdev.WithConsumer("faxbox")}
		if pin.ActiveLow {
			opts = append(opts, gpiocdev.AsActiveLow)
		}
		l, err := gpiocdev.RequestLine(pin.Chip, pin.Line, opts...)
		if err != nil {
			p.fault("LED", name, pin, err)
			continue
		}
		p.leds[name] = l
	}
	for name, pin := range cfg.Buttons {
		name := name
		opts := []gpiocdev.LineReqOption{gpiocdev.AsInput, gpiocdev.WithBothEdges, gpiocdev.WithDebounce(cfg.Debounce),
			gpiocdev.WithConsumer("faxbox"), gpiocdev.WithEventHandler(func(e gpiocdev.LineEvent) { p.edge(name, e) })}
		if pin.ActiveLow {
			opts = append(opts, gpiocdev.AsActiveLow)
		}
		l, err := gpiocdev.RequestLine(pin.Chip, pin.Line, opts...)
		if err != nil {
			p.fault("button", name, pin, err)
			continue
		}
		p.buttons[name] = l
	}
	p.wg.Add(1)
	go p.blink()
	return p
}

func (p *Panel) fault(kind, name string, pin board.Pin, err error) {
	p.cfg.Log.Error("gpio: line unavailable; the panel goes on without it", "kind", kind, "name", name, "chip", pin.Chip, "line", pin.Line, "err", err)
	p.missing = append(p.missing, fmt.Sprintf("%s %s (%s/%d)", kind, name, pin.Chip, pin.Line))
}

// Missing lists the lines that could not be requested (for the alarm).
func (p *Panel) Missing() []string { return p.missing }

// Presses delivers button presses: a short press on release, a long press
// as soon as the button has been held LongPress.
func (p *Panel) Presses() <-chan Press { return p.presses }

func (p *Panel) edge(name string, e gpiocdev.LineEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Type {
	case gpiocdev.LineEventRisingEdge: // active (logical level 1): pressed
		now := time.Now()
		p.down[name] = now
		go func() {
			time.Sleep(p.cfg.LongPress)
			p.mu.Lock()
			t, held := p.down[name]
			if held && t.Equal(now) {
				delete(p.down, name)
				p.mu.Unlock()
				p.send(Press{Button: name, Long: true})
				return
			}
			p.mu.Unlock()
		}()
	case gpiocdev.LineEventFallingEdge: // released
		if _, held := p.down[name]; held {
			delete(p.down, name)
			go p.send(Press{Button: name})
		}
	}
}

func (p *Panel) send(pr Press) {
	select {
	case p.presses <- pr:
	case <-p.stop:
	}
}

// Show sets the LED patterns (names as in the board profile).
func (p *Panel) Show(leds map[string]panel.Pattern) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range leds {
		p.patterns[k] = v
	}
}

// blink is the one ticker that drives every LED.
func (p *Panel) blink() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	last := map[string]int{}
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			for name, l := range p.leds {
				v := 0
				if p.patterns[name].Level(now.Sub(p.start)) {
					v = 1
				}
				if old, ok := last[name]; !ok || old != v {
					if err := l.SetValue(v); err == nil {
						last[name] = v
					}
				}
			}
			p.mu.Unlock()
		}
	}
}

// Close releases every line.
func (p *Panel) Close() {
	close(p.stop)
	p.wg.Wait()
	for _, l := range p.leds {
		l.Close()
	}
	for _, l := range p.buttons {
		l.Close()
	}
}
