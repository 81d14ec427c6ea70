// Package config reads faxbox's one configuration file (JSON). Every key has a
// default (see Default and the README's table); a file need only set what
// differs. Command-line flags override the file after Load.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/faxbox/faxbox/board"
	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/destctl"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/scheduler"
)

// Duration is a JSON duration ("5m").
type Duration = job.Duration

// Config is the whole box.
type Config struct {
	Listen        string   `json:"listen"`
	DataDir       string   `json:"data_dir"`
	Tokens        []string `json:"tokens"`
	WebhookSecret string   `json:"webhook_secret"`
	StationID     string   `json:"station_id"`
	Header        string   `json:"header"`

	Defaults JobDefaults `json:"defaults"`
	Limits   Limits      `json:"limits"`
	TestLine TestLine    `json:"test_line"`
	Webhook  Webhook     `json:"webhook"`
	Convert  Convert     `json:"convert"`
	Retry    Retry       `json:"retry"`
	// Retention is how long documents are kept after a job ends; records stay.
	Retention Duration `json:"retention"`

	Calls      Calls       `json:"calls"`
	LineGroups []LineGroup `json:"line_groups"`
	Asterisk   *Asterisk   `json:"asterisk,omitempty"`
	Compat     Compat      `json:"compat"`
	// IPP is the print-to-fax service (IPP FaxOut).
	IPP IPP `json:"ipp"`
	// SMTP is the office relay the box sends its mail through;
	// SMTPListen the box's own SMTP listener (e-mail to fax).
	SMTP       SMTP       `json:"smtp"`
	SMTPListen SMTPListen `json:"smtp_listen"`
	Panel      Panel      `json:"panel"`
	// Inbox: which numbers receive faxes and where they are announced.
	Inbox Inbox `json:"inbox"`
	// DAHDI: the box's DAHDI line cards (tone zone, echo canceller, inbound
	// context, spans). Spans left out come from the board profile named by
	// panel.board. With an asterisk section, Load adds a line group for each
	// DAHDI line group the spans make (see ResolveDAHDI).
	DAHDI *dahdi.Config `json:"dahdi,omitempty"`
	// Destinations: the destination controls, first match wins (see
	// package destctl and DestControls).
	Destinations []destctl.Rule `json:"destinations"`
	// Calendars are the CalDAV calendars and iCalendar URLs whose events
	// become message calls (package calendar).
	Calendars []Calendar `json:"calendars"`

	// XMPP is the account the box sends job outcomes from (package xmpp).
	XMPP XMPP `json:"xmpp"`
	// LDAP is the office directory: API users, allowed callers, agents
	// and a phone book (package directory).
	LDAP LDAP `json:"ldap"`
	// MediaHealth tunes what the box learns of its fax paths and when a
	// trunk's media raises the alarm (see MediaHealth).
	MediaHealth MediaHealth `json:"media_health"`
	// SelfTest and Qualify: the loopback self-test and the trunk
	// qualification (package selftest).
	SelfTest SelfTest `json:"selftest"`
	Qualify  Qualify  `json:"qualify"`
}

// DestControls compiles the destinations rules for matching; the error
// names each bad rule by its index and pattern.
func (c *Config) DestControls() (*destctl.Controls, error) {
	return destctl.Compile(c.Destinations)
}

// JobDefaults apply when a submission leaves a field out.
type JobDefaults struct {
	MaxAttempts   int      `json:"max_attempts"`
	RetryInterval Duration `json:"retry_interval"`
	Expire        Duration `json:"expire"`
	Resolution    string   `json:"resolution"`
	PageSize      string   `json:"page_size"`
	ECM           string   `json:"ecm"`
	T38           string   `json:"t38"`
}

// Limits bound what one submission may ask for.
type Limits struct {
	MaxUploadBytes int64 `json:"max_upload_bytes"`
	MaxPages       int   `json:"max_pages"`
	MaxAttempts    int   `json:"max_attempts"`
	// MinFreeBytes: below this much free disk, submissions answer 507.
	MinFreeBytes int64 `json:"min_free_bytes"`
	// MaxConcurrentUploads bounds the submissions (faxes, calls, the
	// classic endpoints) read at once; more wait up to 5 s for a slot, then
	// answer 503 with Retry-After.
	MaxConcurrentUploads int `json:"max_concurrent_uploads"`
	// BodyTimeout is how long a request body may take before BodyMinRate
	// applies: after it, a body that has averaged fewer than BodyMinRate
	// bytes per second since the request began is cut (408).
	BodyTimeout Duration `json:"body_timeout"`
	BodyMinRate int64    `json:"body_min_rate"`
}

// TestLine simulates outcomes for numbers starting with Prefix (never dials).
type TestLine struct {
	Prefix   string   `json:"prefix"`
	PageTime Duration `json:"page_time"`
	Channels int      `json:"channels"`
}

// Webhook delivery policy.
type Webhook struct {
	FirstRetry  Duration `json:"first_retry"`
	MaxBackoff  Duration `json:"max_backoff"`
	GiveUpAfter Duration `json:"give_up_after"`
	Timeout     Duration `json:"timeout"`
	Workers     int      `json:"workers"`
	// AllowLoopback lets callback_url and returnUrl point at loopback,
	// link-local and unspecified addresses (the box's own services). Off,
	// such URLs are refused when a job is submitted.
	AllowLoopback bool `json:"allow_loopback"`
}

// Convert configures the document converter.
type Convert struct {
	Workers     int      `json:"workers"` // 0: one per CPU
	Timeout     Duration `json:"timeout"`
	MemoryMB    int      `json:"memory_mb"`
	Ghostscript string   `json:"ghostscript"`
}

// Retry holds per-cause retry intervals. Zero means the job's retry_interval.
type Retry struct {
	Busy       Duration `json:"busy"`
	NoAnswer   Duration `json:"no_answer"`
	Congestion Duration `json:"congestion"`
	FaxError   Duration `json:"fax_error"`
}

// LineGroup is a set of channels the scheduler dials out on.
type LineGroup struct {
	Name     string `json:"name"`
	Channels int    `json:"channels"`
	// Prefixes: numbers starting with one of these use this group; empty
	// means any number.
	Prefixes []string `json:"prefixes"`
	// Transport: "ami" (default) or "callfile".
	Transport string `json:"transport"`
	// Dial string template for the group's channel, %s = number, e.g.
	// "PJSIP/%s@trunk" or "DAHDI/g1/%s".
	Dial string `json:"dial"`
	// RingTimeout: how long a call may ring before it counts as no answer
	// (default 45s).
	RingTimeout Duration `json:"ring_timeout"`
	// Windows: daily calling windows ("08:00-20:00", local time); jobs of
	// priority below 9 wait outside them. Empty: any time.
	Windows []string `json:"windows"`
}

// Asterisk is how faxbox reaches its Asterisk. Nil: no Asterisk, only the
// test line.
type Asterisk struct {
	AMIAddr   string `json:"ami_addr"`
	AMIUser   string `json:"ami_user"`
	AMISecret string `json:"ami_secret"`
	SpoolDir  string `json:"spool_dir"`
	ConfigDir string `json:"config_dir"`
	// User Asterisk runs as (owner of call files).
	User string `json:"user"`
	// Trunk is the SIP trunk faxbox renders into pjsip.conf.
	Trunk *Trunk `json:"trunk,omitempty"`
	// Ports for the rendered configuration.
	SIPPort    int    `json:"sip_port"`
	AMIPort    int    `json:"ami_port"`
	RTPStart   int    `json:"rtp_start"`
	RTPEnd     int    `json:"rtp_end"`
	UDPTLStart int    `json:"udptl_start"`
	UDPTLEnd   int    `json:"udptl_end"`
	BindAddr   string `json:"bind_addr"`
	ReceiveDir string `json:"receive_dir"`
	// Directories for the rendered asterisk.conf (Debian's paths when empty).
	RunDir  string `json:"run_dir"`
	LogDir  string `json:"log_dir"`
	LibDir  string `json:"lib_dir"`
	DBDir   string `json:"db_dir"`
	DataDir string `json:"data_dir"`
	ModDir  string `json:"mod_dir"`
}

// Trunk is a PJSIP trunk.
type Trunk struct {
	Name     string `json:"name"`
	Host     string `json:"host"` // host:port of the peer
	Username string `json:"username"`
	Password string `json:"password"`
	T38      bool   `json:"t38"`
	Channels int    `json:"channels"`
	// Qualify frequency in seconds (0 = off).
	Qualify int `json:"qualify"`
}

// Compat configures the classic PHP-compatible endpoints.
type Compat struct {
	// Enabled turns on /faxservice/ and /callback.
	Enabled bool `json:"enabled"`
	// AllowIPs may use the compatibility endpoints without a token (CIDRs).
	AllowIPs []string `json:"allow_ips"`
	// CallbackContexts are the values the classic /callback URL may pass
	// as c (context); p (priority) must be 1.
	CallbackContexts []string `json:"callback_contexts"`
	// CallbackAuth decides which requests without a token /callback
	// accepts from an allowed address: CallbackSameOrigin (the default)
	// refuses those a browser sends for another site's page (a cross-site
	// link, image or script), CallbackToken accepts none, CallbackAddress
	// accepts all (the classic behaviour).
	CallbackAuth string `json:"callback_auth"`
}

// Values of Compat.CallbackAuth.
const (
	CallbackSameOrigin = "same-origin"
	CallbackToken      = "token"
	CallbackAddress    = "address"
)

// Calls configures the callback box.
type Calls struct {
	// Inbound callback: a caller rings Number and hangs up (the box rejects
	// the call before answering); an allowed caller id is called back after
	// Delay, asked for the PIN, then for a destination, which must start with
	// one of AllowPrefixes (and no deny prefix), and is bridged.
	Callback Callback `json:"callback"`
	// DenyPrefixes: numbers starting with one of these are never called
	// (international, premium rate), from any entry point.
	DenyPrefixes []string `json:"deny_prefixes"`
	// MaxRepeat bounds a message's repeat count.
	MaxRepeat int `json:"max_repeat"`
}

// Callback is the inbound callback service.
type Callback struct {
	Number        string   `json:"number"` // "" = off
	AllowCallers  []string `json:"allow_callers"`
	PIN           string   `json:"pin"`
	AllowPrefixes []string `json:"allow_prefixes"`
	Delay         Duration `json:"delay"`
	PerHour       int      `json:"per_hour"`
	CallbackURL   string   `json:"callback_url"`
}

// Panel selects the front panel's board profile.
type Panel struct {
	Board string `json:"board"` // "" = no panel
	// ResetCommand is run (argv, no shell) when the reset button is held:
	// it restores the network settings to the image's defaults. Empty: the
	// panel says that no reset is configured.
	ResetCommand []string `json:"reset_command"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "/var/lib/faxbox",
		Header:  "%station  %date  page %n/%N",
		Defaults: JobDefaults{
			MaxAttempts:   3,
			RetryInterval: Duration(5 * time.Minute),
			Expire:        Duration(24 * time.Hour),
			Resolution:    "fine",
			PageSize:      "a4",
			ECM:           "auto",
			T38:           "auto",
		},
		Limits: Limits{
			MaxUploadBytes: 20 << 20,
			MaxPages:       100,
			MaxAttempts:    20,
			MinFreeBytes:   64 << 20,

			MaxConcurrentUploads: 4,
			BodyTimeout:          Duration(10 * time.Second),
			BodyMinRate:          1024,
		},
		TestLine: TestLine{Prefix: "9999000", PageTime: Duration(300 * time.Millisecond), Channels: 4},
		Webhook: Webhook{
			FirstRetry:  Duration(5 * time.Second),
			MaxBackoff:  Duration(30 * time.Minute),
			GiveUpAfter: Duration(72 * time.Hour),
			Timeout:     Duration(10 * time.Second),
			Workers:     4,
		},
		Convert:   Convert{Timeout: Duration(120 * time.Second), MemoryMB: 1024, Ghostscript: "gs"},
		Retry:     Retry{},
		Retention: Duration(7 * 24 * time.Hour),
		Compat: Compat{Enabled: true, AllowIPs: []string{"127.0.0.1/32", "::1/128"}, CallbackContexts: []string{"from-internal"},
			CallbackAuth: CallbackSameOrigin},
		IPP:  defaultIPP(),
		SMTP: defaultSMTP(), SMTPListen: defaultSMTPListen(),
		XMPP: defaultXMPP(),
		Calls: Calls{DenyPrefixes: []string{"00", "+", "0900", "0190", "0137", "0180", "118"}, MaxRepeat: 5,
			Callback: Callback{Delay: Duration(5 * time.Second), PerHour: 3, AllowPrefixes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}},
	}
}

// Load reads path over the defaults. Unknown keys are an error, so a typo
// never silently falls back to a default.
func Load(path string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config: %s: %w", path, err)
	}
	if a := c.Asterisk; a != nil {
		// The same defaults services.Render writes into manager.conf and
		// pjsip.conf, so faxbox logs in as the user it rendered and knows
		// the trunk's AOR.
		if a.AMIUser == "" {
			a.AMIUser = "faxbox"
		}
		if a.Trunk != nil && a.Trunk.Name == "" {
			a.Trunk.Name = "trunk"
		}
		if a.AMIAddr == "" {
			port := a.AMIPort
			if port == 0 {
				port = 5038
			}
			a.AMIAddr = fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
	if err := c.ResolveDAHDI(); err != nil {
		return c, fmt.Errorf("config: %s: %w", path, err)
	}
	if _, err := c.DestControls(); err != nil {
		return c, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// ResolveDAHDI settles the DAHDI hardware: the dahdi section's spans, or
// when it lists none, the board profile's (panel.board); c.DAHDI is nil
// afterwards when there are no spans. With an asterisk section, every DAHDI
// line group (dahdi.LineGroups) joins line_groups: a configured group of the
// same name keeps its own settings and takes the DAHDI dial string and
// channel count where it leaves them out. Calling it twice changes nothing.
func (c *Config) ResolveDAHDI() error {
	var d dahdi.Config
	if c.DAHDI != nil {
		d = *c.DAHDI
	}
	if len(d.Spans) == 0 && c.Panel.Board != "" {
		p, err := board.Load(c.Panel.Board)
		if err != nil {
			return err
		}
		d.Spans = p.DAHDI
	}
	if len(d.Spans) == 0 {
		c.DAHDI = nil
		return nil
	}
	groups, err := dahdi.LineGroups(d)
	if err != nil {
		return err
	}
	c.DAHDI = &d
	if c.Asterisk == nil {
		return nil
	}
	for _, dg := range groups {
		i := slices.IndexFunc(c.LineGroups, func(g LineGroup) bool { return g.Name == dg.Name })
		if i < 0 {
			c.LineGroups = append(c.LineGroups, LineGroup{Name: dg.Name, Channels: dg.Channels, Dial: dg.Dial})
			continue
		}
		if g := &c.LineGroups[i]; g.Dial == "" {
			g.Dial = dg.Dial
			if g.Channels == 0 {
				g.Channels = dg.Channels
			}
		}
	}
	return nil
}

var (
	digits   = regexp.MustCompile(`^[0-9]*$`)
	safePath = regexp.MustCompile(`^/[A-Za-z0-9/._-]*$`)
)

// Validate reports the first problem that would stop the box from starting.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Tokens) == 0 && !c.LDAP.Enabled() {
		errs = append(errs, errors.New("no API token: set tokens in the config file or pass -token"))
	}
	for _, t := range c.Tokens {
		if len(t) < 8 || strings.ContainsAny(t, " \t\r\n") {
			errs = append(errs, errors.New("tokens must be at least 8 characters without spaces"))
			break
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if !digits.MatchString(c.TestLine.Prefix) {
		errs = append(errs, fmt.Errorf("test_line.prefix %q: digits only", c.TestLine.Prefix))
	}
	if c.Defaults.MaxAttempts < 1 {
		errs = append(errs, errors.New("defaults.max_attempts must be at least 1"))
	}
	seen := map[string]bool{}
	for i, g := range c.LineGroups {
		if !job.ValidGroupName(g.Name) {
			errs = append(errs, fmt.Errorf("line_groups[%d].name %q: lower-case letters, digits, - and _", i, g.Name))
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("line_groups[%d].name %q used twice", i, g.Name))
		}
		seen[g.Name] = true
		if g.Channels < 1 {
			errs = append(errs, fmt.Errorf("line_groups[%d].channels must be at least 1", i))
		}
		for _, p := range g.Prefixes {
			if !digits.MatchString(strings.TrimPrefix(p, "+")) {
				errs = append(errs, fmt.Errorf("line_groups[%d].prefixes: %q is not digits", i, p))
			}
		}
		for _, w := range g.Windows {
			if _, err := scheduler.ParseWindow(w); err != nil {
				errs = append(errs, fmt.Errorf("line_groups[%d].windows: %w", i, err))
			}
		}
		switch g.Transport {
		case "", "ami", "callfile":
		default:
			errs = append(errs, fmt.Errorf("line_groups[%d].transport %q: ami or callfile", i, g.Transport))
		}
	}
	if l := c.Limits; l.MaxConcurrentUploads < 1 || l.BodyTimeout <= 0 || l.BodyMinRate < 1 {
		errs = append(errs, errors.New("limits.max_concurrent_uploads, limits.body_timeout and limits.body_min_rate must be positive"))
	}
	switch c.Compat.CallbackAuth {
	case CallbackSameOrigin, CallbackToken, CallbackAddress:
	default:
		errs = append(errs, fmt.Errorf("compat.callback_auth %q: %s, %s or %s", c.Compat.CallbackAuth, CallbackSameOrigin, CallbackToken, CallbackAddress))
	}
	if err := c.IPP.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(c.SMTP.validate(), c.SMTPListen.validate()); err != nil {
		errs = append(errs, err)
	}
	if err := c.XMPP.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Inbox.validate(c.Webhook.AllowLoopback); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateRoutes(); err != nil {
		errs = append(errs, err)
	}
	if len(c.LineGroups) > 0 && c.Asterisk == nil {
		errs = append(errs, errors.New("line_groups need an asterisk section"))
	}
	if cb := c.Calls.Callback; cb.Number != "" {
		if !digits.MatchString(cb.Number) || len(cb.PIN) < 4 || len(cb.PIN) > 8 || !digits.MatchString(cb.PIN) {
			errs = append(errs, errors.New("calls.callback: number must be digits and pin 4 to 8 digits"))
		}
		for _, a := range cb.AllowCallers {
			if !digits.MatchString(a) || a == "" {
				errs = append(errs, fmt.Errorf("calls.callback.allow_callers: %q is not digits", a))
			}
		}
	}
	if _, err := c.DestControls(); err != nil {
		errs = append(errs, err)
	}
	if err := validateCalendars(c.Calendars); err != nil {
		errs = append(errs, err)
	}
	if err := c.LDAP.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.MediaHealth.check(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Qualify.check(); err != nil {
		errs = append(errs, err)
	}
	if c.Asterisk != nil && !safePath.MatchString(c.DataDir) {
		// Document paths reach Asterisk's dialplan: keep them plain.
		errs = append(errs, fmt.Errorf("data_dir %q: with Asterisk, an absolute path of letters, digits, / . _ - only", c.DataDir))
	}
	return errors.Join(errs...)
}
