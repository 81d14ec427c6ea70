// Package dahdi renders the DAHDI configuration of the box's line cards —
// /etc/dahdi/system.conf and Asterisk's chan_dahdi.conf — from faxbox's
// config (FXO ports with fxs_ks signalling, FXS ports with fxo_ks, an E1 PRI
// span), and follows DAHDI's state from AMI (DAHDIShowChannels, Alarm,
// AlarmClear, SpanAlarm, SpanAlarmClear) for the line states and the alarm.
package dahdi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/internal/atomicfile"
)

// Span is one DAHDI span: an analog card's ports or one E1 port. Spans are
// listed in DAHDI's span order (the order dahdi_scan prints them), so the
// n-th entry is DAHDI span n: that is the number in system.conf's span line
// and in the SpanAlarm events.
type Span struct {
	Type     string `json:"type"`     // fxo|fxs|e1
	First    int    `json:"first"`    // first channel number
	Channels int    `json:"channels"` // ports (fxo/fxs); ignored for e1 (30 B-channels)
	Group    int    `json:"group"`    // Asterisk dial group (DAHDI/g<n>/…)
	CRC4     bool   `json:"crc4"`     // e1
	Timing   int    `json:"timing"`   // e1: 0 = master, 1 = take clock from the line
	// Dynamic makes this a DAHDI dynamic span instead of a card's span:
	// "<driver>,<address>" as in system.conf's dynamic= line, e.g.
	// "eth,eth0/00:02:b3:35:43:9c/0" (TDMoE) or "loc,1:0" (the local
	// loopback driver). dahdi_cfg creates dynamic spans after the
	// hardware's, so they come last in Spans.
	Dynamic string `json:"dynamic,omitempty"`
	// LineGroup names the scheduler's line group that dials out on this
	// span's channels (FXO and E1; FXS ports serve local devices and are
	// never dialled out on). Default "dahdi<group>".
	LineGroup string `json:"line_group,omitempty"`
	// PRI is the side an E1 span takes in ISDN PRI signalling: cpe (the
	// default) on a line from the telephone company or a PBX's network
	// port, net on a PBX's E1 trunk port (the box then acts as the network).
	PRI PRISide `json:"pri,omitempty"`
}

// PRISide is the ISDN PRI side of an E1 span (chan_dahdi's signalling).
type PRISide string

// The PRI sides: the box as the subscriber's equipment or as the network.
const (
	PRICPE PRISide = "cpe" // signalling = pri_cpe (the default)
	PRINet PRISide = "net" // signalling = pri_net
)

// signalling returns chan_dahdi's signalling for an E1 span on side p
// ("" is cpe); ok is false for any other side.
func (p PRISide) signalling() (sig string, ok bool) {
	switch p {
	case "", PRICPE:
		return "pri_cpe", true
	case PRINet:
		return "pri_net", true
	}
	return "", false
}

// channels returns the span's first and last channel and how many of them
// carry calls (an E1 has 31 timeslots: 30 B-channels and the D-channel).
func (s Span) channels() (first, last, calls int) {
	if s.Type == "e1" {
		return s.First, s.First + 30, 30
	}
	return s.First, s.First + s.Channels - 1, s.Channels
}

func (s Span) lineGroup() string {
	if s.LineGroup != "" {
		return s.LineGroup
	}
	return fmt.Sprintf("dahdi%d", s.Group)
}

// Config describes the DAHDI hardware.
type Config struct {
	ToneZone string `json:"tone_zone"` // de, us, …
	EchoCan  string `json:"echo_canceller"`
	Context  string `json:"context"` // inbound calls
	Spans    []Span `json:"spans"`
}

var (
	reWord    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	reDynamic = regexp.MustCompile(`^(eth|ethmf|loc),[A-Za-z0-9:/._-]{1,64}$`)
)

func (c *Config) validate() error {
	var errs []error
	if !reWord.MatchString(c.ToneZone) || !reWord.MatchString(c.EchoCan) || !reWord.MatchString(c.Context) {
		errs = append(errs, errors.New("dahdi: tone_zone, echo_canceller and context: lower-case words"))
	}
	used := map[int]bool{}
	for i, s := range c.Spans {
		n := s.Channels
		switch s.Type {
		case "fxo", "fxs":
			if n < 1 || n > 64 {
				errs = append(errs, fmt.Errorf("dahdi: span %d: 1 to 64 channels", i+1))
			}
		case "e1":
			n = 31
		default:
			errs = append(errs, fmt.Errorf("dahdi: span %d: type %q (fxo, fxs or e1)", i+1, s.Type))
		}
		if s.First < 1 || s.Group < 0 || s.Group > 63 {
			errs = append(errs, fmt.Errorf("dahdi: span %d: first channel from 1, group 0-63", i+1))
		}
		if s.Dynamic != "" && !reDynamic.MatchString(s.Dynamic) {
			errs = append(errs, fmt.Errorf("dahdi: span %d: dynamic %q: <eth|ethmf|loc>,<address>", i+1, s.Dynamic))
		}
		if s.Dynamic == "" && i > 0 && c.Spans[i-1].Dynamic != "" {
			errs = append(errs, fmt.Errorf("dahdi: span %d: a card's span after a dynamic span (dynamic spans come last)", i+1))
		}
		if s.LineGroup != "" && !reWord.MatchString(s.LineGroup) {
			errs = append(errs, fmt.Errorf("dahdi: span %d: line_group %q: a lower-case word", i+1, s.LineGroup))
		}
		if s.Type == "e1" && (s.Timing < 0 || s.Timing > len(c.Spans)) {
			errs = append(errs, fmt.Errorf("dahdi: span %d: timing %d: 0 (master) or a clock priority up to the span count", i+1, s.Timing))
		}
		if _, ok := s.PRI.signalling(); !ok || (s.PRI != "" && s.Type != "e1") {
			errs = append(errs, fmt.Errorf("dahdi: span %d: pri %q: cpe or net, on an e1 span only", i+1, s.PRI))
		}
		for ch := s.First; ch < s.First+n; ch++ {
			if used[ch] {
				errs = append(errs, fmt.Errorf("dahdi: channel %d used twice", ch))
				break
			}
			used[ch] = true
		}
	}
	groups := map[string]int{}
	for i, s := range c.Spans {
		if s.Type == "fxs" {
			continue
		}
		if g, ok := groups[s.lineGroup()]; ok && g != s.Group {
			errs = append(errs, fmt.Errorf("dahdi: span %d: line group %s dials DAHDI group %d and %d", i+1, s.lineGroup(), g, s.Group))
		}
		groups[s.lineGroup()] = s.Group
	}
	return errors.Join(errs...)
}

// LineGroup is a scheduler line group made of DAHDI channels.
type LineGroup struct {
	Name     string
	Channels int    // calls at once: FXO ports plus E1 B-channels
	Dial     string // "DAHDI/g<group>/%s"
}

// LineGroups returns the line groups the spans make, in span order: one
// per line_group name (FXO and E1 spans; FXS ports are not trunks).
func LineGroups(c Config) ([]LineGroup, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var out []LineGroup
	idx := map[string]int{}
	for _, s := range c.Spans {
		if s.Type == "fxs" {
			continue
		}
		_, _, n := s.channels()
		name := s.lineGroup()
		if i, ok := idx[name]; ok {
			out[i].Channels += n
			continue
		}
		idx[name] = len(out)
		out = append(out, LineGroup{Name: name, Channels: n, Dial: fmt.Sprintf("DAHDI/g%d/%%s", s.Group)})
	}
	return out, nil
}

func rng(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// withDefaults fills in the tone zone (de), the echo canceller (mg2: built into dahdi-linux, no kernel
// staging driver needed, unlike oslec) and
// the inbound context (faxbox-receive).
func (c Config) withDefaults() Config {
	if c.ToneZone == "" {
		c.ToneZone = "de"
	}
	if c.EchoCan == "" {
		c.EchoCan = "mg2"
	}
	if c.Context == "" {
		c.Context = "faxbox-receive"
	}
	return c
}

// Validate reports every mistake in c (after defaults): overlapping
// channels, unknown span types, words that could break the files.
func (c Config) Validate() error {
	c = c.withDefaults()
	return c.validate()
}

// Render returns system.conf and chan_dahdi.conf.
func Render(c Config) (systemConf, chanDahdi []byte, err error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, nil, err
	}
	var sys, ch bytes.Buffer
	fmt.Fprintf(&sys, "# Rendered by faxbox (dahdi/): do not edit.\nloadzone = %s\ndefaultzone = %s\n", c.ToneZone, c.ToneZone)
	for _, sp := range c.Spans {
		if sp.Dynamic != "" {
			first, last, _ := sp.channels()
			fmt.Fprintf(&sys, "dynamic = %s,%d,%d\n", sp.Dynamic, last-first+1, sp.Timing)
		}
	}
	fmt.Fprintf(&ch, "; Rendered by faxbox (dahdi/): do not edit.\n[trunkgroups]\n\n[channels]\nlanguage = en\ncontext = %s\nusecallerid = yes\nechocancel = yes\nechocancelwhenbridged = no\nfaxdetect = no\nrelaxdtmf = yes\n", c.Context)
	for i, s := range c.Spans {
		span := i + 1
		switch s.Type {
		case "fxo", "fxs":
			r := rng(s.First, s.First+s.Channels-1)
			sig := "fxsks" // an FXO port is driven with FXS signalling
			chanSig := "fxs_ks"
			if s.Type == "fxs" {
				sig, chanSig = "fxoks", "fxo_ks"
			}
			fmt.Fprintf(&sys, "\n# %s ports\n%s = %s\nechocanceller = %s,%s\n", strings.ToUpper(s.Type), sig, r, c.EchoCan, r)
			fmt.Fprintf(&ch, "\n; %s ports\nsignalling = %s\ngroup = %d\nchannel => %s\n", strings.ToUpper(s.Type), chanSig, s.Group, r)
		case "e1":
			crc := ""
			if s.CRC4 {
				crc = ",crc4"
			}
			b1, b2 := rng(s.First, s.First+14), rng(s.First+16, s.First+30)
			// dahdi_cfg applies span lines before it creates the dynamic
			// spans, so a span line for a dynamic span fails (no such span);
			// a dynamic span takes no line config anyway (its framing is
			// the frames it exchanges) and its timing is in its dynamic line.
			spanLine := fmt.Sprintf("span = %d,%d,0,ccs,hdb3%s", span, s.Timing, crc)
			if s.Dynamic != "" {
				spanLine = fmt.Sprintf("# span %d is dynamic (%s): no span line", span, s.Dynamic)
			}
			sig, _ := s.PRI.signalling()
			fmt.Fprintf(&sys, "\n# E1 PRI span\n%s\nbchan = %s,%s\ndchan = %d\nechocanceller = %s,%s,%s\n",
				spanLine, b1, b2, s.First+15, c.EchoCan, b1, b2)
			fmt.Fprintf(&ch, "\n; E1 PRI span %d\nsignalling = %s\nswitchtype = euroisdn\nresetinterval = never\ngroup = %d\nchannel => %s,%s\n", span, sig, s.Group, b1, b2)
		}
	}
	return sys.Bytes(), ch.Bytes(), nil
}

// WriteSystemConf renders c and writes system.conf into dir (through a
// temporary file and a rename, so dahdi_cfg never reads half a file). It
// returns the file's path.
func WriteSystemConf(c Config, dir string) (string, error) {
	sys, _, err := Render(c)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("dahdi: %w", err)
	}
	path := filepath.Join(dir, "system.conf")
	if err := atomicfile.Write(path, sys, 0o644); err != nil {
		return "", fmt.Errorf("dahdi: %w", err)
	}
	return path, nil
}

// State follows DAHDI's channels and span alarms from AMI events.
type State struct {
	mu       sync.Mutex
	channels map[int]string // channel → alarm ("No Alarm", "Red Alarm", …)
	dnd      map[int]bool   // channels with Do Not Disturb on
	spans    map[int]string // span → alarm text
}

// NewState returns an empty state.
func NewState() *State {
	return &State{channels: map[int]string{}, dnd: map[int]bool{}, spans: map[int]string{}}
}

// Load takes the items of a DAHDIShowChannels list action.
func (s *State) Load(items []ami.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range items {
		if n, err := strconv.Atoi(m.Get("DAHDIChannel")); err == nil {
			s.channels[n] = m.Get("Alarm")
			s.dnd[n] = m.Get("DND") == "Enabled"
		}
	}
}

// Handle applies one event.
func (s *State) Handle(m ami.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.Event() {
	case "Alarm":
		if n, err := strconv.Atoi(m.Get("DAHDIChannel")); err == nil {
			s.channels[n] = m.Get("Alarm")
		}
	case "AlarmClear":
		if n, err := strconv.Atoi(m.Get("DAHDIChannel")); err == nil {
			s.channels[n] = "No Alarm"
		}
	case "SpanAlarm":
		if n, err := strconv.Atoi(m.Get("Span")); err == nil {
			s.spans[n] = m.Get("Alarm")
		}
	case "DNDState":
		if n, err := strconv.Atoi(m.Get("DAHDIChannel")); err == nil {
			s.dnd[n] = strings.EqualFold(m.Get("Status"), "enabled")
		}
	case "SpanAlarmClear":
		if n, err := strconv.Atoi(m.Get("Span")); err == nil {
			delete(s.spans, n)
		}
	}
}

// Down counts, per line group of c, the calls its spans cannot carry now:
// every channel of a span in alarm, and each channel in alarm (or with Do
// Not Disturb on) on a span that is not. Groups with nothing down are left
// out.
func (s *State) Down(c Config) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for i, sp := range c.Spans {
		if sp.Type == "fxs" {
			continue
		}
		first, last, calls := sp.channels()
		n := 0
		if _, inAlarm := s.spans[i+1]; inAlarm {
			n = calls
		} else {
			for ch := first; ch <= last; ch++ {
				if sp.Type == "e1" && ch == first+15 {
					continue // the D-channel carries no call
				}
				if a := s.channels[ch]; (a != "" && a != "No Alarm") || s.dnd[ch] {
					n++
				}
			}
		}
		if n > 0 {
			out[sp.lineGroup()] += n
		}
	}
	return out
}

// Alarms lists the channels and spans in alarm ("span 1: Red Alarm").
func (s *State) Alarms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for n, a := range s.spans {
		out = append(out, fmt.Sprintf("span %d: %s", n, a))
	}
	for n, a := range s.channels {
		if a != "" && a != "No Alarm" {
			out = append(out, fmt.Sprintf("channel %d: %s", n, a))
		}
	}
	sort.Strings(out)
	return out
}
