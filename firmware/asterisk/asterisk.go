// Package asterisk places fax attempts through Asterisk: AMI Originate (the
// default) or call files, both into the rendered faxbox-send context (see
// services/ for the dialplan contract), and turns Asterisk's events into
// dialler Progress and Result reports. It implements dialler.Dialler.
//
// Correlation: an originated channel's Uniqueid is the attempt id (AMI
// ChannelId); a call-file channel carries the attempt id as its caller id
// name, so its first event maps its Uniqueid to the attempt.
package asterisk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/callpolicy"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/spandsp"
)

// ErrInvalid is returned for a request with a value that may not reach
// Asterisk.
var ErrInvalid = errors.New("asterisk: invalid request")

var (
	reDigits = regexp.MustCompile(`^\+?[0-9]{1,20}$`)
	reID     = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	rePath   = regexp.MustCompile(`^/[A-Za-z0-9/._-]{1,255}$`)
	reText   = regexp.MustCompile(`[^A-Za-z0-9 +.:/()_-]`)
	reDial   = regexp.MustCompile(`^[A-Za-z0-9/_.@-]*%s[A-Za-z0-9/_.@-]*$`)
)

// sentFamily is the AstDB family where the dialplan keeps each line's last
// fax result (services/: faxbox-send's h extension).
const sentFamily = "faxbox-result"

// keptKey is the AstDB key of line l's kept result, "<group>.<n>"; ok is
// false for a line that is not a valid line id.
func keptKey(l job.LineID) (string, bool) {
	if !job.ValidGroupName(l.Group) || l.N < 1 || l.N > job.MaxLinesPerGroup {
		return "", false
	}
	return l.Group + "." + strconv.Itoa(l.N), true
}

// Config of a Dialler.
type Config struct {
	Group string
	// Dial is the channel template, %s = the number ("PJSIP/%s@trunk").
	Dial string
	// Transport: "ami" (Originate) or "callfile".
	Transport string
	// SpoolDir of Asterisk (call files).
	SpoolDir string
	// UID and GID own the call files (Asterisk's user); -1 keeps ours.
	UID, GID int
	// Documents is faxbox's documents directory. When set, New checks that
	// Asterisk's user (UID, GID and UID's groups) can read the documents
	// faxbox writes there; a failed check is reported by DocumentProblem,
	// never fatal (DocumentProblem runs it again until it passes or a fax
	// reads its file).
	Documents string
	// RingTimeout: how long a call may ring (default 45 s).
	RingTimeout time.Duration
	Log         *slog.Logger
	// Inbound callback: OnInbound is told of a call to the callback number
	// (caller id digits); PIN and AllowDest are the callpolicy.Callback that
	// decides on what the caller keys in when called back.
	OnInbound func(callerID string)
	PIN       string
	AllowDest func(digits string) bool
}

// Manager is the part of the manager interface a Dialler uses; *ami.Client
// implements it (tests replay recorded traffic through it).
type Manager interface {
	// Action sends an action and returns its response; a "Response: Error"
	// comes back as the message together with an error.
	Action(ctx context.Context, name string, hs ...ami.Header) (ami.Message, error)
	// List sends a list action and returns its response and items.
	List(ctx context.Context, name string, hs ...ami.Header) (ami.Message, []ami.Message, error)
}

// Dialler is the Asterisk dialler of one line group.
type Dialler struct {
	cfg  Config
	c    Manager
	sink dialler.Sink

	mu    sync.Mutex
	calls map[string]*call // by attempt id
	uids  map[string]*call // by Uniqueid

	access docAccess // can Asterisk read faxbox's documents
}

type call struct {
	req        dialler.Request
	uid        string
	channel    string
	answered   bool
	answeredAt time.Time
	origDone   bool
	dialStatus string
	cause      int
	reason     int
	t38        bool
	sending    bool
	result     ami.Message
	done       bool
	timer      *time.Timer
	// inbound callback: where the caller is in the PIN/destination prompts
	flow callpolicy.Flow
}

// New returns a dialler using manager c (an *ami.Client). Run must be
// started to consume events (one consumer for the client).
func New(cfg Config, c Manager, sink dialler.Sink) (*Dialler, error) {
	if cfg.Dial == "" {
		cfg.Dial = "PJSIP/%s@trunk"
	}
	if !reDial.MatchString(cfg.Dial) || strings.Count(cfg.Dial, "%") != 1 {
		return nil, fmt.Errorf("asterisk: line group %s: bad dial template %q", cfg.Group, cfg.Dial)
	}
	if cfg.Transport == "" {
		cfg.Transport = "ami"
	}
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 45 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Dialler{cfg: cfg, c: c, sink: sink, calls: map[string]*call{}, uids: map[string]*call{}}
	d.checkDocuments()
	return d, nil
}

// channel returns the channel to dial for r.
func (d *Dialler) channel(r dialler.Request) string {
	ch := fmt.Sprintf(d.cfg.Dial, strings.TrimPrefix(r.To, "+"))
	if r.Fax != nil && !r.Fax.T38 && strings.HasPrefix(ch, "PJSIP/") && strings.Contains(ch, "@") {
		ch += "-g711" // the trunk's G.711-only endpoint (services/)
	}
	return ch
}

func yesno(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// vars validates r and returns the channel variables of the contract.
func vars(r dialler.Request) ([][2]string, error) {
	f := r.Fax
	if !reDigits.MatchString(r.To) {
		return nil, fmt.Errorf("%w: number %q", ErrInvalid, r.To)
	}
	if !reID.MatchString(r.AttemptID) || !reID.MatchString(r.JobID) {
		return nil, fmt.Errorf("%w: id %q/%q", ErrInvalid, r.AttemptID, r.JobID)
	}
	kept, ok := keptKey(r.Line)
	if !ok {
		return nil, fmt.Errorf("%w: line %q", ErrInvalid, r.Line)
	}
	if !rePath.MatchString(f.TIFF) || strings.Contains(f.TIFF, "..") {
		return nil, fmt.Errorf("%w: file %q", ErrInvalid, f.TIFF)
	}
	rate := f.MaxRate
	if rate == 0 {
		rate = 14400
	}
	switch rate {
	case 2400, 4800, 7200, 9600, 12000, 14400:
	default:
		return nil, fmt.Errorf("%w: rate %d", ErrInvalid, f.MaxRate)
	}
	station := strings.TrimSpace(reText.ReplaceAllString(f.StationID, " "))
	if len(station) > 20 {
		station = station[:20]
	}
	return [][2]string{
		{"FAXBOX_ATTEMPT", r.AttemptID}, {"FAXBOX_JOB", r.JobID}, {"FAXBOX_KEPT", kept}, {"FAXBOX_FILE", f.TIFF},
		{"FAXBOX_ECM", yesno(f.ECM)}, {"FAXBOX_MAXRATE", strconv.Itoa(rate)},
		{"FAXBOX_FALLBACK", yesno(f.AudioFallback || !f.T38)}, {"FAXBOX_STATION", station},
		{"FAXBOX_TIMEOUT", strconv.Itoa(60 + 60*max(f.Pages, 1))},
		// The header is drawn on the pages by faxbox's converter, numbered
		// across the whole document even when resuming: none from spandsp.
		{"FAXBOX_HEADER", ""},
	}, nil
}

// callVars validates a call attempt and returns its channel, extension and
// channel variables (services/ faxbox-call contract).
func (d *Dialler) callVars(r dialler.Request) (string, string, [][2]string, error) {
	if !reDigits.MatchString(r.To) || !reID.MatchString(r.AttemptID) {
		return "", "", nil, fmt.Errorf("%w: number %q / id %q", ErrInvalid, r.To, r.AttemptID)
	}
	to := fmt.Sprintf(d.cfg.Dial, strings.TrimPrefix(r.To, "+"))
	vs := [][2]string{{"FAXBOX_ATTEMPT", r.AttemptID}, {"FAXBOX_JOB", r.JobID}}
	c := r.Call
	switch c.Kind {
	case job.CallClick2Call:
		if !reDigits.MatchString(c.Agent) {
			return "", "", nil, fmt.Errorf("%w: agent %q", ErrInvalid, c.Agent)
		}
		vs = append(vs, [2]string{"FAXBOX_DIAL", to}, [2]string{"FAXBOX_RING", strconv.Itoa(int(d.cfg.RingTimeout.Seconds()))},
			[2]string{"FAXBOX_TIMEOUT", "3600"})
		return fmt.Sprintf(d.cfg.Dial, strings.TrimPrefix(c.Agent, "+")), "c2c", vs, nil
	case job.CallCallback:
		return to, "cb", vs, nil
	case job.CallMessage:
		if !rePath.MatchString(c.Sound) || strings.Contains(c.Sound, "..") {
			return "", "", nil, fmt.Errorf("%w: sound %q", ErrInvalid, c.Sound)
		}
		if c.Repeat < 1 || c.Repeat > 9 {
			return "", "", nil, fmt.Errorf("%w: repeat %d", ErrInvalid, c.Repeat)
		}
		if c.ConfirmDigit != "" && !strings.Contains("0123456789*#", c.ConfirmDigit) || len(c.ConfirmDigit) > 1 {
			return "", "", nil, fmt.Errorf("%w: confirm digit %q", ErrInvalid, c.ConfirmDigit)
		}
		vs = append(vs, [2]string{"FAXBOX_SOUND", c.Sound}, [2]string{"FAXBOX_REPEAT", strconv.Itoa(c.Repeat)},
			[2]string{"FAXBOX_DIGIT", c.ConfirmDigit}, [2]string{"FAXBOX_TIMEOUT", strconv.Itoa(60 + 60*c.Repeat)})
		return to, "msg", vs, nil
	}
	return "", "", nil, fmt.Errorf("%w: call kind %q", ErrInvalid, c.Kind)
}

// Dial originates the attempt (or spools its call file) and returns.
func (d *Dialler) Dial(ctx context.Context, r dialler.Request) error {
	var (
		vs      [][2]string
		err     error
		channel = d.channel(r)
		context = "faxbox-send"
		exten   = "send"
	)
	if err := r.Check(); err != nil {
		return err
	}
	if r.Call != nil {
		channel, exten, vs, err = d.callVars(r)
		context = "faxbox-call"
	} else {
		vs, err = vars(r)
	}
	if err != nil {
		return err
	}
	c := &call{req: r, uid: r.AttemptID, cause: -1, reason: -1}
	d.mu.Lock()
	if _, dup := d.calls[r.AttemptID]; dup {
		d.mu.Unlock()
		return fmt.Errorf("asterisk: attempt %s already dialled", r.AttemptID)
	}
	d.calls[r.AttemptID] = c
	if d.cfg.Transport == "ami" {
		d.uids[c.uid] = c
	}
	d.mu.Unlock()
	d.sink.Progress(dialler.Progress{AttemptID: r.AttemptID, State: dialler.StateDialing, At: time.Now()})
	if d.cfg.Transport == "callfile" {
		err = d.spool(r, channel, context, exten, vs)
	} else {
		err = d.originate(ctx, r, channel, context, exten, vs)
	}
	if err != nil {
		d.mu.Lock()
		delete(d.calls, r.AttemptID)
		delete(d.uids, c.uid)
		d.mu.Unlock()
		return err
	}
	return nil
}

func (d *Dialler) originate(ctx context.Context, r dialler.Request, channel, context, exten string, vs [][2]string) error {
	hs := []ami.Header{
		{Key: "Channel", Value: channel},
		{Key: "Context", Value: context}, {Key: "Exten", Value: exten}, {Key: "Priority", Value: "1"},
		{Key: "Async", Value: "true"}, {Key: "ChannelId", Value: r.AttemptID},
		{Key: "Timeout", Value: strconv.FormatInt(d.cfg.RingTimeout.Milliseconds(), 10)},
		{Key: "CallerID", Value: fmt.Sprintf("\"%s\" <%s>", r.JobID, "0")},
	}
	for _, v := range vs {
		hs = append(hs, ami.Header{Key: "Variable", Value: v[0] + "=" + v[1]})
	}
	if _, err := d.c.Action(ctx, "Originate", hs...); err != nil {
		return fmt.Errorf("asterisk: originate %s: %w", r.AttemptID, err)
	}
	return nil
}

// spool writes a call file in the spool's tmp directory, then renames it into
// outgoing (Asterisk picks up only complete files).
func (d *Dialler) spool(r dialler.Request, channel, context, exten string, vs [][2]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Channel: %s\nCallerID: \"%s\" <0>\nMaxRetries: 0\nWaitTime: %d\nContext: %s\nExtension: %s\nPriority: 1\nArchive: yes\n",
		channel, r.AttemptID, int(d.cfg.RingTimeout.Seconds()), context, exten)
	for _, v := range vs {
		fmt.Fprintf(&b, "Setvar: %s=%s\n", v[0], v[1])
	}
	tmp := filepath.Join(d.cfg.SpoolDir, "tmp", r.AttemptID+".call")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("asterisk: call file: %w", err)
	}
	if d.cfg.UID >= 0 && d.cfg.GID >= 0 {
		// Asterisk must own the file: it utime()s it on every retry, and a
		// file it cannot touch is dialled again while the first call runs.
		if err := os.Chown(tmp, d.cfg.UID, d.cfg.GID); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("asterisk: call file owner: %w", err)
		}
	}
	now := time.Now()
	os.Chtimes(tmp, now, now)
	if err := os.Rename(tmp, filepath.Join(d.cfg.SpoolDir, "outgoing", r.AttemptID+".call")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("asterisk: call file: %w", err)
	}
	return nil
}

// Hangup ends the attempt's channel (Asterisk finds a channel by name or
// Uniqueid).
func (d *Dialler) Hangup(ctx context.Context, id string) error {
	d.mu.Lock()
	c := d.calls[id]
	target := ""
	if c != nil {
		target = c.channel
		if target == "" {
			target = c.uid
		}
	}
	d.mu.Unlock()
	if c == nil {
		return dialler.ErrUnknownAttempt
	}
	_, err := d.c.Action(ctx, "Hangup", ami.Header{Key: "Channel", Value: target}, ami.Header{Key: "Cause", Value: "16"})
	return err
}

// Reconcile asks Asterisk which attempts still have a channel up; it keeps
// listening for those.
func (d *Dialler) Reconcile(ctx context.Context, attempts []dialler.Request) (map[string]bool, error) {
	_, items, err := d.c.List(ctx, "CoreShowChannels")
	if err != nil {
		return nil, fmt.Errorf("asterisk: reconcile: %w", err)
	}
	up := map[string]ami.Message{}
	for _, m := range items {
		up[m.Get("Uniqueid")] = m
	}
	alive := map[string]bool{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range attempts {
		id := r.AttemptID
		m, ok := up[id]
		if !ok {
			continue
		}
		alive[id] = true
		c := &call{req: r, uid: id, channel: m.Get("Channel"), answered: true, origDone: true, cause: -1, reason: -1}
		d.calls[id] = c
		d.uids[id] = c
	}
	return alive, nil
}

// Resync runs after an AMI reconnect: attempts whose channel vanished while
// the connection was down end as interrupted.
func (d *Dialler) Resync(ctx context.Context) {
	_, items, err := d.c.List(ctx, "CoreShowChannels")
	if err != nil {
		d.cfg.Log.Warn("asterisk: resync", "err", err)
		return
	}
	up := map[string]bool{}
	for _, m := range items {
		up[m.Get("Uniqueid")] = true
	}
	d.mu.Lock()
	var lost []*call
	for _, c := range d.calls {
		if !c.done && c.origDone && !up[c.uid] {
			lost = append(lost, c)
		}
	}
	d.mu.Unlock()
	for _, c := range lost {
		if c.req.Call == nil && d.storedResult(ctx, c) {
			d.finish(c, nil)
			continue
		}
		d.finish(c, &dialler.Result{Code: failure.LineInterrupted, Raw: "the call ended while the manager connection was down"})
	}
}

// outcome is what Asterisk told of call c, for spandsp.Classify.
func outcome(c *call) spandsp.Outcome {
	o := spandsp.Outcome{Answered: c.answered, DialStatus: c.dialStatus, HangupCause: c.cause, Reason: c.reason, T38: c.t38}
	if c.result != nil {
		o.HaveResult = true
		o.Status, o.Error, o.StatusStr = c.result.Get("Status"), c.result.Get("Error"), c.result.Get("StatusStr")
		o.Pages, _ = strconv.Atoi(c.result.Get("Pages"))
	}
	return o
}

// faxResult classifies a fax attempt's outcome.
func faxResult(c *call, o spandsp.Outcome) dialler.Result {
	v := spandsp.Classify(o)
	res := dialler.Result{Code: v.Code, Raw: v.Raw, Answered: c.answered, ReachedFax: v.ReachedFax}
	if c.result != nil {
		res.PagesSent = o.Pages
		res.BitRate, _ = strconv.Atoi(c.result.Get("Rate"))
		res.ECM = c.result.Get("ECM") == "yes"
		res.RemoteStationID = strings.TrimSpace(c.result.Get("RemoteStationID"))
	}
	return res
}

// Kept implements dialler.Keeper: the result of a fax attempt whose call
// ended while faxbox was not running, from what the dialplan kept in AstDB.
func (d *Dialler) Kept(ctx context.Context, r dialler.Request) (dialler.Result, bool) {
	if r.Call != nil {
		return dialler.Result{}, false // only fax results are kept
	}
	c := &call{req: r, cause: -1, reason: -1}
	if !d.storedResult(ctx, c) {
		return dialler.Result{}, false
	}
	res := faxResult(c, outcome(c))
	res.AttemptID = r.AttemptID
	res.EndedAt = time.Now()
	return res, true
}

// storedResult reads the result the dialplan kept in AstDB for c's line
// (faxbox-result/<group>.<n>: attempt|status|error|pages|rate|cause|statusstr)
// when the FaxboxResult event was lost with the manager connection; it
// reports whether it belonged to c's attempt (not a later one's on the same
// line) and was taken.
func (d *Dialler) storedResult(ctx context.Context, c *call) bool {
	key, ok := keptKey(c.req.Line)
	if !ok {
		return false
	}
	_, items, err := d.c.List(ctx, "DBGet", ami.Header{Key: "Family", Value: sentFamily}, ami.Header{Key: "Key", Value: key})
	if err != nil || len(items) == 0 {
		return false
	}
	f := strings.SplitN(items[0].Get("Val"), "|", 7)
	if len(f) != 7 || f[0] != c.req.AttemptID {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c.result = ami.Message{{Key: "Event", Value: "UserEvent"}, {Key: "UserEvent", Value: "FaxboxResult"},
		{Key: "Attempt", Value: f[0]}, {Key: "Status", Value: f[1]}, {Key: "Error", Value: f[2]},
		{Key: "Pages", Value: f[3]}, {Key: "Rate", Value: f[4]}, {Key: "StatusStr", Value: f[6]}}
	c.cause, _ = strconv.Atoi(f[5])
	if f[1] != "" {
		c.answered = true // a fax session ran: the call was answered
	}
	return true
}

// Run consumes the client's events until they end.
func (d *Dialler) Run(events <-chan ami.Message) {
	for m := range events {
		d.Handle(m)
	}
}

// Handle processes one event.
func (d *Dialler) Handle(m ami.Message) {
	if m.Event() == "UserEvent" && m.Get("UserEvent") == "FaxboxInbound" {
		if d.cfg.OnInbound != nil {
			go d.cfg.OnInbound(m.Get("CallerID"))
		}
		return
	}
	d.mu.Lock()
	c := d.callFor(m)
	if c == nil || c.done {
		d.mu.Unlock()
		return
	}
	if ch := m.Get("Channel"); ch != "" && c.channel == "" {
		c.channel = ch
	}
	prog, finalize := d.apply(c, m)
	if prog != nil {
		prog.AttemptID = c.req.AttemptID
		prog.Channel = c.channel
		prog.At = time.Now()
		if c.t38 {
			prog.Transport = "t38"
		}
	}
	d.mu.Unlock()
	if prog != nil {
		d.sink.Progress(*prog)
	}
	if finalize {
		d.finish(c, nil)
	}
}

// callFor returns the attempt m is about, or nil; d.mu is held. Dial
// events name the dialled channel in their Dest fields; a call-file
// channel is known by its caller id name (the attempt id) until its
// unique id is seen.
func (d *Dialler) callFor(m ami.Message) *call {
	ev := m.Event()
	uid := m.Get("Uniqueid")
	dial := ev == "DialEnd" || ev == "DialBegin"
	if dial {
		uid = m.Get("DestUniqueid")
	}
	if c := d.uids[uid]; c != nil || d.cfg.Transport != "callfile" || ev == "" {
		return c
	}
	name := m.Get("CallerIDName")
	if dial {
		name = m.Get("DestCallerIDName")
	}
	c := d.calls[name]
	if c == nil || c.done {
		return nil
	}
	if c.uid != uid && uid != "" {
		delete(d.uids, c.uid)
		c.uid = uid
		d.uids[uid] = c
	}
	return c
}

// apply updates c from its event m (d.mu held) and returns the progress
// to report, if any, and whether the attempt's result is now due.
func (d *Dialler) apply(c *call, m ami.Message) (prog *dialler.Progress, finalize bool) {
	switch m.Event() {
	case "Newstate":
		if m.Get("ChannelStateDesc") == "Ringing" {
			prog = &dialler.Progress{State: dialler.StateRinging}
		}
		if m.Get("ChannelStateDesc") == "Up" {
			prog = c.answer()
		}
	case "DialEnd":
		c.dialStatus = m.Get("DialStatus")
	case "OriginateResponse":
		return d.originated(c, m)
	case "FAXStatus":
		switch m.Get("Status") {
		case "T.38 Negotiated":
			c.t38 = true
		case "FAX Transmission In Progress":
			if !c.sending {
				c.sending = true
				prog = &dialler.Progress{State: dialler.StateSending, Page: 1, Pages: c.req.Fax.Pages}
			}
		}
	case "UserEvent":
		switch m.Get("UserEvent") {
		case "FaxboxResult", "FaxboxCall":
			c.result = m
		case "FaxboxPIN":
			d.checkPIN(c, m.Get("PIN"))
		case "FaxboxDest":
			d.checkDest(c, m.Get("Dest"))
		}
	case "Hangup":
		c.cause, _ = strconv.Atoi(m.Get("Cause"))
		c.origDone = true
		finalize = c.answered || c.result != nil || d.cfg.Transport == "callfile" || c.reason >= 0
	}
	return prog, finalize
}

// answer marks c answered the first time and returns that progress.
func (c *call) answer() *dialler.Progress {
	if c.answered {
		return nil
	}
	c.answered, c.answeredAt = true, time.Now()
	return &dialler.Progress{State: dialler.StateAnswered}
}

// originated applies the Originate's answer (d.mu held). A call not
// answered may see its Hangup before or after this; without it, the
// result waits a moment for it, then is decided with what is known.
func (d *Dialler) originated(c *call, m ami.Message) (prog *dialler.Progress, finalize bool) {
	c.origDone = true
	if c.channel == "" {
		c.channel = m.Get("Channel")
	}
	c.reason, _ = strconv.Atoi(m.Get("Reason"))
	if m.Get("Response") == "Success" {
		return c.answer(), false
	}
	if c.cause >= 0 {
		return nil, true
	}
	c.timer = time.AfterFunc(300*time.Millisecond, func() { d.finish(c, nil) })
	return nil, false
}

// finish reports the attempt's result once; r overrides classification.
func (d *Dialler) finish(c *call, r *dialler.Result) {
	d.mu.Lock()
	if c.done {
		d.mu.Unlock()
		return
	}
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
	delete(d.calls, c.req.AttemptID)
	delete(d.uids, c.uid)
	o := outcome(c)
	d.mu.Unlock()
	var res dialler.Result
	if r == nil && c.req.Call != nil {
		cr := callResult(c, o)
		r = &cr
	}
	if r != nil {
		res = *r
	} else {
		res = faxResult(c, o)
	}
	res.AttemptID = c.req.AttemptID
	res.Channel = c.channel
	res.AnsweredAt = c.answeredAt
	res.EndedAt = time.Now()
	if c.req.Call == nil {
		d.observeAccess(c, res)
	}
	switch {
	case c.t38:
		res.Transport = "t38"
	case c.sending || c.result != nil && o.Pages > 0:
		res.Transport = "g711"
	}
	if d.cfg.Transport == "callfile" {
		// Asterisk archives the call file with its own verdict
		// (Completed = answered, not "fax delivered"; Expired; Failed).
		go func() {
			if st := d.archived(c.req.AttemptID, 3*time.Second); st != "" {
				res.Raw += " / call file: " + st
			}
			d.sink.Result(res)
		}()
		return
	}
	d.sink.Result(res)
}

// archived waits for the attempt's call file in outgoing_done and returns its
// Status line ("" when it does not appear in time).
func (d *Dialler) archived(id string, wait time.Duration) string {
	path := filepath.Join(d.cfg.SpoolDir, "outgoing_done", id+".call")
	for deadline := time.Now().Add(wait); ; {
		if st := ArchivedStatus(path); st != "" {
			return st
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ArchivedStatus reads the Status of an archived call file.
func ArchivedStatus(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Status:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// callResult classifies a call attempt: callpolicy decides from what
// Asterisk reported.
func callResult(c *call, o spandsp.Outcome) dialler.Result {
	e := callpolicy.End{Kind: c.req.Call.Kind, ConfirmDigit: c.req.Call.ConfirmDigit, Answered: c.answered,
		DialStatus: o.DialStatus, HangupCause: o.HangupCause, Reason: o.Reason, Refused: c.flow.Refused()}
	if m := c.result; m != nil {
		e.Report = &callpolicy.Report{DialStatus: m.Get("DialStatus"), HangupCause: m.Get("HangupCause"),
			AnsweredTime: m.Get("AnsweredTime"), Digit: m.Get("Digit")}
	}
	return callpolicy.Result(e)
}

// callback is the inbound callback's policy from the configuration.
func (d *Dialler) callback() callpolicy.Callback {
	return callpolicy.Callback{PIN: d.cfg.PIN, AllowDest: d.cfg.AllowDest}
}

// checkPIN runs under d.mu: callpolicy decides on the PIN keyed in (a
// FaxboxPIN event), step moves the caller on.
func (d *Dialler) checkPIN(c *call, pin string) {
	d.step(c, c.flow.KeyedPIN(d.callback(), pin), "")
}

// checkDest runs under d.mu: callpolicy decides on the destination keyed in
// (a FaxboxDest event), step dials it or hangs up.
func (d *Dialler) checkDest(c *call, dest string) {
	d.step(c, c.flow.KeyedDest(d.callback(), dest), dest)
}

// step runs under d.mu and carries out a callback decision: a Redirect of
// the caller's channel to the faxbox-call extension of the step (cbpin,
// cbdest, cbdial with FAXBOX_DIAL set to dest's channel, cbbye). AMI actions
// run in their own goroutine (the event reader may be waiting on this one).
func (d *Dialler) step(c *call, s callpolicy.Step, dest string) {
	target := c.channel
	switch s {
	case callpolicy.AskPIN:
		go d.redirect(target, "cbpin", nil)
	case callpolicy.AskDest:
		go d.redirect(target, "cbdest", nil)
	case callpolicy.Connect:
		go d.redirect(target, "cbdial", &ami.Header{Key: "FAXBOX_DIAL", Value: fmt.Sprintf(d.cfg.Dial, dest)})
	case callpolicy.HangUp:
		d.cfg.Log.Info("asterisk: callback refused", "component", "asterisk", "attempt", c.req.AttemptID, "code", c.flow.Refused())
		go d.redirect(target, "cbbye", nil)
	}
}

func (d *Dialler) redirect(channel, exten string, set *ami.Header) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if set != nil {
		if _, err := d.c.Action(ctx, "Setvar", ami.Header{Key: "Channel", Value: channel}, ami.Header{Key: "Variable", Value: set.Key}, ami.Header{Key: "Value", Value: set.Value}); err != nil {
			d.cfg.Log.Warn("asterisk: setvar", "channel", channel, "err", err)
			return
		}
	}
	if _, err := d.c.Action(ctx, "Redirect", ami.Header{Key: "Channel", Value: channel}, ami.Header{Key: "Context", Value: "faxbox-call"},
		ami.Header{Key: "Exten", Value: exten}, ami.Header{Key: "Priority", Value: "1"}); err != nil {
		d.cfg.Log.Warn("asterisk: redirect", "channel", channel, "exten", exten, "err", err)
	}
}
