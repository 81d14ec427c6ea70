// Package board loads the per-board profiles in board/<name>/profile.json:
// which GPIO chip and line offset drives each LED and reads each button
// (and whether it is active-low), which serial device, baud rate and size
// the LCD has, how its keypad bytes map to keys, and which DAHDI spans (line
// cards) it carries. Validate reports every
// mistake with a clear message (a line used twice, an unknown chip, …).
package board

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/faxbox/faxbox/dahdi"
)

//go:embed */profile.json
var profiles embed.FS

// Pin is one GPIO line.
type Pin struct {
	Chip      string `json:"chip"` // gpiochip0, or a label
	Line      int    `json:"line"`
	ActiveLow bool   `json:"active_low"`
}

// LCD is the serial display.
type LCD struct {
	Device string            `json:"device"`
	Baud   int               `json:"baud"`
	Rows   int               `json:"rows"`
	Cols   int               `json:"cols"`
	Keys   map[string]string `json:"keys"` // keypad byte ("A") → key (up|down|enter|back)
}

// Profile is one board.
type Profile struct {
	Name    string         `json:"name"`
	LEDs    map[string]Pin `json:"leds"`    // power, activity, alarm, inbox, line:<group>/<n>
	Buttons map[string]Pin `json:"buttons"` // cancel:<line>, retry, busy:<line>, page, reset
	LCD     *LCD           `json:"lcd,omitempty"`
	// DAHDI lists the board's DAHDI spans in span order (dahdi/ renders
	// system.conf and chan_dahdi.conf from them, and the box makes its
	// DAHDI line groups from them). A config's dahdi.spans replaces them.
	DAHDI []dahdi.Span `json:"dahdi,omitempty"`
}

var (
	reChip   = regexp.MustCompile(`^(gpiochip[0-9]{1,3}|[A-Za-z0-9_.-]{1,32})$`)
	reLED    = regexp.MustCompile(`^(power|activity|alarm|inbox|line:[a-z][a-z0-9_-]*/[0-9]+)$`)
	reButton = regexp.MustCompile(`^(retry|page|reset|(cancel|busy):[a-z][a-z0-9_-]*/[0-9]+)$`)
	reKey    = regexp.MustCompile(`^[A-Y]$`)
	bauds    = map[int]bool{1200: true, 2400: true, 4800: true, 9600: true, 19200: true, 38400: true, 57600: true, 115200: true}
)

// Names lists the built-in profiles.
func Names() []string {
	ents, _ := profiles.ReadDir(".")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Load reads and validates a built-in profile.
func Load(name string) (*Profile, error) {
	b, err := profiles.ReadFile(name + "/profile.json")
	if err != nil {
		return nil, fmt.Errorf("board: no profile %q (have %v)", name, Names())
	}
	return Parse(b)
}

// Parse reads and validates a profile.
func Parse(b []byte) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("board: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate reports every problem of the profile.
func (p *Profile) Validate() error {
	var errs []error
	used := map[string]string{}
	check := func(kind, name string, pin Pin) {
		if !reChip.MatchString(pin.Chip) {
			errs = append(errs, fmt.Errorf("board %s: %s %s: unknown chip %q", p.Name, kind, name, pin.Chip))
		}
		if pin.Line < 0 || pin.Line > 511 {
			errs = append(errs, fmt.Errorf("board %s: %s %s: line %d out of range", p.Name, kind, name, pin.Line))
		}
		key := fmt.Sprintf("%s/%d", pin.Chip, pin.Line)
		if other, dup := used[key]; dup {
			errs = append(errs, fmt.Errorf("board %s: %s line %s used twice (%s and %s %s)", p.Name, pin.Chip, fmt.Sprint(pin.Line), other, kind, name))
		}
		used[key] = kind + " " + name
	}
	for _, name := range sortedKeys(p.LEDs) {
		if !reLED.MatchString(name) {
			errs = append(errs, fmt.Errorf("board %s: unknown LED %q", p.Name, name))
		}
		check("LED", name, p.LEDs[name])
	}
	for _, name := range sortedKeys(p.Buttons) {
		if !reButton.MatchString(name) {
			errs = append(errs, fmt.Errorf("board %s: unknown button %q", p.Name, name))
		}
		check("button", name, p.Buttons[name])
	}
	if l := p.LCD; l != nil {
		if l.Rows < 2 || l.Rows > 4 || l.Cols < 16 || l.Cols > 20 {
			errs = append(errs, fmt.Errorf("board %s: LCD %dx%d: 16x2 to 20x4", p.Name, l.Cols, l.Rows))
		}
		if !bauds[l.Baud] {
			errs = append(errs, fmt.Errorf("board %s: LCD baud %d not supported", p.Name, l.Baud))
		}
		if l.Device == "" || l.Device[0] != '/' {
			errs = append(errs, fmt.Errorf("board %s: LCD device %q: an absolute path", p.Name, l.Device))
		}
		for k, v := range l.Keys {
			if !reKey.MatchString(k) {
				errs = append(errs, fmt.Errorf("board %s: keypad byte %q: A to Y", p.Name, k))
			}
			switch v {
			case "up", "down", "enter", "back":
			default:
				errs = append(errs, fmt.Errorf("board %s: key %s → %q: up, down, enter or back", p.Name, k, v))
			}
		}
	}
	if len(p.DAHDI) > 0 {
		if err := (dahdi.Config{Spans: p.DAHDI}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("board %s: %w", p.Name, err))
		}
	}
	return errors.Join(errs...)
}

// KeyMap returns the LCD key map as bytes.
func (l *LCD) KeyMap() map[byte]string {
	m := map[byte]string{}
	for k, v := range l.Keys {
		m[k[0]] = v
	}
	return m
}

func sortedKeys(m map[string]Pin) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
