// Package panel is the front panel's logic: a pure state machine from the
// box's state (lines, queue, last result, alarms) and the operator's input
// (buttons, keypad keys) to LED patterns, LCD screens and actions. It does no
// I/O; the GPIO and LCD drivers and the box wiring live elsewhere.
package panel

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Pattern is how an LED shows a state.
type Pattern int

// LED patterns.
const (
	Off Pattern = iota
	On
	SlowBlink // 1 Hz
	FastBlink // 4 Hz
	Heartbeat // two short pulses every 1.2 s
)

// Level is the LED's level at time t (time since any fixed origin; one
// ticker drives every LED).
func (p Pattern) Level(t time.Duration) bool {
	ms := t.Milliseconds()
	switch p {
	case On:
		return true
	case SlowBlink:
		return ms%1000 < 500
	case FastBlink:
		return ms%250 < 125
	case Heartbeat:
		m := ms % 1200
		return m < 100 || (m >= 250 && m < 350)
	}
	return false
}

func (p Pattern) String() string {
	return [...]string{"off", "on", "slow", "fast", "heartbeat"}[p]
}

// Alarm names a condition that lights the alarm LED.
type Alarm string

// Alarms.
const (
	AsteriskDown  Alarm = "asterisk unreachable"
	TrunkDown     Alarm = "trunk unqualified"
	T38Unhealthy  Alarm = "T.38 health bad"
	DiskFull      Alarm = "disk over 90%"
	TimeNotSet    Alarm = "time not set"
	HardwareFault Alarm = "panel hardware missing"
	LineCardAlarm Alarm = "line card alarm"
)

// Line is one line's state as the panel sees it.
type Line struct {
	ID    string // "trunk/1"
	State string // idle|dialing|ringing|sending|voice|busied_out|down (line card alarm: dark, the alarm LED flashes)
	JobID string
	To    string
	Page  int
	Pages int
}

// Input is the box's state.
type Input struct {
	Lines      []Line
	QueueDepth int
	LastResult string
	Alarms     []Alarm
	IP         string
	// SelfTest is the latest self-test in a few words ("running",
	// "passed", "failed line.busy"; "" unknown).
	SelfTest string
	// Unread is how many received faxes nobody has marked read: the
	// inbox LED blinks slowly and the status screen's first row says so.
	Unread int
}

// Action is what an operator's input asks the box to do.
type Action struct {
	Kind string // cancel_line|retry_failed|set_busy|reset_network|self_test
	Line string
	Busy bool
}

// Event is a button press or a keypad key.
type Event struct {
	Button string // cancel|retry|busy|page|reset
	Line   string // for cancel and busy: which line
	Long   bool
	Key    string // keypad: up|down|enter|back
}

// Output is what the panel shows.
type Output struct {
	LEDs   map[string]Pattern // power, activity, alarm, inbox, line:<id>
	Screen []string           // rows, each padded to the width
}

// Panel holds the operator's place (LCD page, menu).
type Panel struct {
	rows, cols int
	page       int // 0 status, 1 lines, 2 last result, 3 alarms
	menu       int // -1: no menu; else the selected item
	inMenu     bool
	view       string // a menu item being shown
}

var menuItems = []string{"Line status", "Queue", "Self-test", "IP settings"}

// New returns a panel for an LCD of rows x cols.
func New(rows, cols int) *Panel { return &Panel{rows: rows, cols: cols} }

// LEDs computes the LED patterns.
func LEDs(in Input) map[string]Pattern {
	out := map[string]Pattern{"power": On, "activity": Off, "alarm": Off, "inbox": Off}
	if in.Unread > 0 {
		out["inbox"] = SlowBlink
	}
	for _, a := range in.Alarms {
		out["alarm"] = FastBlink
		if a == AsteriskDown {
			out["power"] = SlowBlink
		}
	}
	if in.QueueDepth > 0 {
		out["activity"] = Heartbeat
	}
	for _, l := range in.Lines {
		p := Off
		switch l.State {
		case "dialing", "voice", "answered":
			p = On
		case "ringing":
			p = FastBlink
		case "sending":
			p = SlowBlink
		case "busied_out":
			p = Heartbeat
		}
		out["line:"+l.ID] = p
	}
	return out
}

// Update computes what to show for in.
func (p *Panel) Update(in Input) Output {
	var rows []string
	switch {
	case p.inMenu && p.view != "":
		rows = p.menuView(in)
	case p.inMenu:
		for i, it := range menuItems {
			mark := " "
			if i == p.menu {
				mark = ">"
			}
			rows = append(rows, mark+it)
		}
		if p.menu >= p.rows { // scroll so the selection is visible
			rows = rows[p.menu-p.rows+1:]
		}
	default:
		rows = p.pageRows(in)
	}
	screen := make([]string, p.rows)
	for i := range screen {
		s := ""
		if i < len(rows) {
			s = rows[i]
		}
		screen[i] = fit(s, p.cols)
	}
	return Output{LEDs: LEDs(in), Screen: screen}
}

func fit(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r) + strings.Repeat(" ", n-len(r))
}

func (p *Panel) pageRows(in Input) []string {
	switch p.page {
	case 1:
		var rows []string
		for _, l := range in.Lines {
			if l.JobID == "" {
				continue
			}
			s := fmt.Sprintf("%s %s", shortLine(l.ID), l.State)
			if l.Pages > 0 && l.Page > 0 {
				s += fmt.Sprintf(" %d/%d", l.Page, l.Pages)
			}
			rows = append(rows, s)
		}
		if len(rows) == 0 {
			rows = []string{"No calls"}
		}
		return rows
	case 2:
		return []string{"Last result:", in.LastResult}
	case 3:
		if len(in.Alarms) == 0 {
			return []string{"No alarms"}
		}
		var rows []string
		for _, a := range in.Alarms {
			rows = append(rows, "! "+string(a))
		}
		return rows
	}
	rows := []string{"faxbox " + in.IP, fmt.Sprintf("Queue %d", in.QueueDepth)}
	active := 0
	for _, l := range in.Lines {
		if l.JobID != "" {
			active++
		}
	}
	rows[1] += fmt.Sprintf(" Calls %d", active)
	if len(in.Alarms) > 0 {
		rows = append(rows, "! "+string(in.Alarms[0]))
	} else if in.LastResult != "" {
		rows = append(rows, in.LastResult)
	}
	if in.Unread > 0 {
		// The first row tells of unread faxes; the IP moves to the end
		// (and stays in the IP settings item).
		rows = append(append([]string{UnreadRow(in.Unread)}, rows[1:]...), rows[0])
	}
	return rows
}

// UnreadRow is the status screen's row for n unread received faxes.
func UnreadRow(n int) string {
	if n == 1 {
		return "1 new fax"
	}
	return fmt.Sprintf("%d new faxes", n)
}

func shortLine(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return "L" + id[i+1:]
	}
	return id
}

func (p *Panel) menuView(in Input) []string {
	switch p.view {
	case "Line status":
		var rows []string
		ls := append([]Line(nil), in.Lines...)
		sort.Slice(ls, func(i, j int) bool { return ls[i].ID < ls[j].ID })
		for _, l := range ls {
			rows = append(rows, shortLine(l.ID)+" "+l.State)
		}
		return rows
	case "Queue":
		return []string{fmt.Sprintf("Queue %d jobs", in.QueueDepth)}
	case "Self-test":
		if in.SelfTest == "" {
			return []string{"Self-test", "started"}
		}
		return []string{"Self-test", in.SelfTest}
	case "IP settings":
		return []string{"IP " + in.IP}
	}
	return nil
}

// Handle applies an operator's input and returns the actions for the box.
func (p *Panel) Handle(ev Event, in Input) []Action {
	switch ev.Button {
	case "cancel":
		if ev.Line != "" {
			return []Action{{Kind: "cancel_line", Line: ev.Line}}
		}
	case "retry":
		return []Action{{Kind: "retry_failed"}}
	case "busy":
		for _, l := range in.Lines {
			if l.ID == ev.Line {
				return []Action{{Kind: "set_busy", Line: ev.Line, Busy: l.State != "busied_out"}}
			}
		}
	case "page":
		p.page = (p.page + 1) % 4
		p.inMenu = false
	case "reset":
		if ev.Long {
			return []Action{{Kind: "reset_network"}}
		}
	}
	switch ev.Key {
	case "enter":
		switch {
		case !p.inMenu:
			p.inMenu, p.menu, p.view = true, 0, ""
		case p.view == "":
			p.view = menuItems[p.menu]
			if p.view == "Self-test" {
				return []Action{{Kind: "self_test"}}
			}
		}
	case "back":
		if p.view != "" {
			p.view = ""
		} else {
			p.inMenu = false
		}
	case "down":
		if p.inMenu && p.view == "" && p.menu < len(menuItems)-1 {
			p.menu++
		}
	case "up":
		if p.inMenu && p.view == "" && p.menu > 0 {
			p.menu--
		}
	}
	return nil
}
