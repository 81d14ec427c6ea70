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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/faxbox/faxbox/firmware/ami"
)

// Span is one line card or E1 span.
type Span struct {
	Type     string `json:"type"`     // fxo|fxs|e1
	First    int    `json:"first"`    // first channel number
	Channels int    `json:"channels"` // ports (fxo/fxs); ignored for e1 (30 B-channels)
	Group    int    `json:"group"`    // Asterisk dial group (DAHDI/g<n>/…)
	CRC4     bool   `json:"crc4"`     // e1
	Timing   int    `json:"timing"`   // e1: 0 = master, 1 = take clock from the line
}

// Config describes the DAHDI hardware.
type Config struct {
	ToneZone string `json:"tone_zone"` // de, us, …
	EchoCan  string `json:"echo_canceller"`
	Context  string `json:"context"` // inbound calls
	Spans    []Span `json:"spans"`
}

var reWord = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

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
		for ch := s.First; ch < s.First+n; ch++ {
			if used[ch] {
				errs = append(errs, fmt.Errorf("dahdi: channel %d used twice", ch))
				break
			}
			used[ch] = true
		}
	}
	return errors.Join(errs...)
}

func rng(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// Render returns system.conf and chan_dahdi.conf.
func Render(c Config) (systemConf, chanDahdi []byte, err error) {
	if c.ToneZone == "" {
		c.ToneZone = "de"
	}
	if c.EchoCan == "" {
		c.EchoCan = "oslec"
	}
	if c.Context == "" {
		c.Context = "faxbox-receive"
	}
	if err := c.validate(); err != nil {
		return nil, nil, err
	}
	var sys, ch bytes.Buffer
	fmt.Fprintf(&sys, "# Rendered by faxbox (dahdi/): do not edit.\nloadzone = %s\ndefaultzone = %s\n", c.ToneZone, c.ToneZone)
	fmt.Fprintf(&ch, "; Rendered by faxbox (dahdi/): do not edit.\n[trunkgroups]\n\n[channels]\nlanguage = en\ncontext = %s\nusecallerid = yes\nechocancel = yes\nechocancelwhenbridged = no\nfaxdetect = no\nrelaxdtmf = yes\n", c.Context)
	span := 0
	for _, s := range c.Spans {
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
			span++
			crc := ""
			if s.CRC4 {
				crc = ",crc4"
			}
			b1, b2 := rng(s.First, s.First+14), rng(s.First+16, s.First+30)
			fmt.Fprintf(&sys, "\n# E1 PRI span\nspan = %d,%d,0,ccs,hdb3%s\nbchan = %s,%s\ndchan = %d\nechocanceller = %s,%s,%s\n",
				span, s.Timing, crc, b1, b2, s.First+15, c.EchoCan, b1, b2)
			fmt.Fprintf(&ch, "\n; E1 PRI span %d\nsignalling = pri_cpe\nswitchtype = euroisdn\nresetinterval = never\ngroup = %d\nchannel => %s,%s\n", span, s.Group, b1, b2)
		}
	}
	return sys.Bytes(), ch.Bytes(), nil
}

// State follows DAHDI's channels and span alarms from AMI events.
type State struct {
	mu       sync.Mutex
	channels map[int]string // channel → alarm ("No Alarm", "Red Alarm", …)
	spans    map[int]string // span → alarm text
}

// NewState returns an empty state.
func NewState() *State { return &State{channels: map[int]string{}, spans: map[int]string{}} }

// Load takes the items of a DAHDIShowChannels list action.
func (s *State) Load(items []ami.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range items {
		if n, err := strconv.Atoi(m.Get("DAHDIChannel")); err == nil {
			s.channels[n] = m.Get("Alarm")
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
	case "SpanAlarmClear":
		if n, err := strconv.Atoi(m.Get("Span")); err == nil {
			delete(s.spans, n)
		}
	}
}

// Alarms lists the channels and spans in alarm ("span 1: Red Alarm").
func (s *State) Alarms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
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
