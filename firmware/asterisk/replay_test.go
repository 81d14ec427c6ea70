package asterisk_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/faxbox/faxbox/firmware/ami"
)

// A transcript is the AMI traffic of one real attempt, recorded on the lab
// by TestRecordAMI (record_lab_test.go) into testdata/ami/*.txt, in AMI wire
// format: a header block (Transcript, Number, Attempt, Job, File or Sound:
// the recorded ids; Result: what the dialler reported), then the actions
// faxbox sent ("Action:", with the ActionID Asterisk echoed), Asterisk's
// responses and list items (same ActionID) and the events of the attempt's
// channels and bridges, in the order they passed between faxbox and
// Asterisk. The box's other events meanwhile (qualify results, FullyBooted)
// are left out.
type transcript struct {
	path                             string
	what, number, attempt, job, file string
	sound, result                    string
	steps                            []replayStep
	channel                          ami.Message // CoreShowChannel item of the attempt's channel, while it was up
	showResp, keptResp               ami.Message
	kept                             []ami.Message // DBGet items, read after the attempt ended
}

// A replayStep is one action of the attempt's own (Originate, Hangup), its
// response and the events recorded after it, up to the next such action.
// Queries (CoreShowChannels, DBGet) are not steps: their answers are kept
// apart and their neighbouring events stay in the step they fell into.
type replayStep struct {
	action, resp ami.Message
	events       []ami.Message
}

// queries are the list actions a replayer answers from what is up, not in
// the recorded order.
var queries = map[string]bool{"CoreShowChannels": true, "DBGet": true}

func loadTranscript(path string) (*transcript, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	defer f.Close()
	tr, err := parseTranscript(f)
	if err != nil {
		return nil, fmt.Errorf("transcript %s: %w", path, err)
	}
	tr.path = path
	return tr, nil
}

// parseTranscript reads a transcript (see transcript).
func parseTranscript(r io.Reader) (*transcript, error) {
	br := bufio.NewReader(r)
	meta, err := ami.Parse(br)
	if err != nil || !meta.Has("Transcript") {
		return nil, fmt.Errorf("no Transcript header block (%v)", err)
	}
	tr := &transcript{what: meta.Get("Transcript"), number: meta.Get("Number"), attempt: meta.Get("Attempt"), job: meta.Get("Job"),
		file: meta.Get("File"), sound: meta.Get("Sound"), result: meta.Get("Result")}
	var query ami.Message
	for {
		m, err := ami.Parse(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := tr.add(m, &query); err != nil {
			return nil, err
		}
	}
	if len(tr.steps) == 0 || tr.steps[0].action.Get("Action") != "Originate" || tr.attempt == "" || tr.job == "" || tr.number == "" {
		return nil, errors.New("a transcript starts with the attempt's Originate and names its number, attempt and job")
	}
	return tr, nil
}

// add files one message of the traffic; query is the list action being
// answered, if any.
func (tr *transcript) add(m ami.Message, query *ami.Message) error {
	id := m.Get("ActionID")
	var cur *replayStep
	if len(tr.steps) > 0 {
		cur = &tr.steps[len(tr.steps)-1]
	}
	switch {
	case m.Has("Action") && queries[m.Get("Action")]:
		*query = m
	case m.Has("Action"):
		tr.steps = append(tr.steps, replayStep{action: m})
		*query = nil
	case *query != nil && id != "" && id == query.Get("ActionID"):
		tr.addAnswer(query.Get("Action"), m)
	case isResponse(m) && cur != nil && cur.resp == nil && id == cur.action.Get("ActionID"):
		cur.resp = m
	case isResponse(m):
		return fmt.Errorf("a response to no action: %q", m.String())
	case cur == nil:
		return fmt.Errorf("an event before the first action: %q", m.String())
	default:
		cur.events = append(cur.events, m)
	}
	return nil
}

// isResponse reports whether m is a response (OriginateResponse is an
// event with a Response header).
func isResponse(m ami.Message) bool { return m.Has("Response") && !m.Has("Event") }

// addAnswer keeps a query's response or list item.
func (tr *transcript) addAnswer(query string, m ami.Message) {
	switch {
	case query == "CoreShowChannels" && isResponse(m):
		tr.showResp = m
	case query == "CoreShowChannels" && m.Get("Uniqueid") == tr.attempt:
		tr.channel = m
	case query == "DBGet" && isResponse(m):
		tr.keptResp = m
	case query == "DBGet":
		tr.kept = append(tr.kept, m)
	}
}

// loadTranscripts reads testdata/ami/*.txt, by number.
func loadTranscripts(t testing.TB) map[string]*transcript {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata", "ami", "*.txt"))
	if len(paths) == 0 {
		t.Fatal("no transcripts in testdata/ami (make record-ami records them)")
	}
	out := map[string]*transcript{}
	for _, p := range paths {
		tr, err := loadTranscript(p)
		if err != nil {
			t.Fatal(err)
		}
		if old := out[tr.number]; old != nil {
			t.Fatalf("two transcripts for number %s: %s, %s", tr.number, old.path, p)
		}
		out[tr.number] = tr
	}
	return out
}

var (
	// reChannelName is a channel name with Asterisk's per-channel suffix.
	reChannelName = regexp.MustCompile(`^([A-Za-z]+/[^,;]+-)([0-9a-f]{8})(;[12])?$`)
	// reDialledNumber is the number of a dial string (PJSIP/100@trunk).
	reDialledNumber = regexp.MustCompile(`^[A-Za-z]+/\+?([0-9]+)@`)
	// idHeaders hold channel uniqueids (and bridge ids) of the call.
	idHeaders = map[string]bool{"uniqueid": true, "linkedid": true, "destuniqueid": true, "destlinkedid": true, "bridgeuniqueid": true}
)

// replay is one playing of a transcript, with its recorded ids rewritten
// to this attempt's.
type replay struct {
	tr      *transcript
	next    int               // the next step to play
	exact   map[string]string // recorded id → this replay's
	sub     *strings.Replacer // recorded names inside values → this replay's
	job     string
	kept    string          // the AstDB key its result is kept under (FAXBOX_KEPT)
	targets map[string]bool // channel names and uniqueids Hangup may name
}

func (r *replay) ended() bool { return r.next >= len(r.tr.steps) }

// rewrite returns m with this replay's ids.
func (r *replay) rewrite(m ami.Message) ami.Message {
	out := make(ami.Message, len(m))
	for i, h := range m {
		if v, ok := r.exact[h.Value]; ok {
			h.Value = v
		} else {
			h.Value = r.sub.Replace(h.Value)
		}
		out[i] = h
	}
	return out
}

func (r *replay) rewriteAll(ms []ami.Message) []ami.Message {
	out := make([]ami.Message, len(ms))
	for i, m := range ms {
		out[i] = r.rewrite(m)
	}
	return out
}

// variables returns the Originate's channel variables.
func variables(m ami.Message) map[string]string {
	vs := map[string]string{}
	for _, v := range m.All("Variable") {
		k, val, _ := strings.Cut(v, "=")
		vs[k] = val
	}
	return vs
}

// newReplay starts a replay of tr for the Originate the dialler sent; seq
// makes its ids fresh.
func newReplay(tr *transcript, originate ami.Message, seq int) *replay {
	vs := variables(originate)
	r := &replay{tr: tr, exact: map[string]string{}, job: vs["FAXBOX_JOB"], kept: vs["FAXBOX_KEPT"], targets: map[string]bool{}}
	pairs := map[string]string{tr.attempt: originate.Get("ChannelId"), tr.job: r.job}
	if tr.file != "" {
		pairs[tr.file] = vs["FAXBOX_FILE"]
	}
	if tr.sound != "" {
		pairs[tr.sound] = vs["FAXBOX_SOUND"]
	}
	n := 0
	fresh := func(recorded string, channel []string) {
		_, isID := r.exact[recorded]
		_, isName := pairs[recorded]
		if isID || isName || recorded == tr.attempt {
			return
		}
		n++
		if channel != nil {
			pairs[recorded] = fmt.Sprintf("%s%04x%04x", channel[1], seq&0xffff, n)
			return
		}
		r.exact[recorded] = fmt.Sprintf("%d.%d", 1700000000+seq, n)
	}
	tr.each(func(h ami.Header) {
		if idHeaders[strings.ToLower(h.Key)] && h.Value != "" {
			fresh(h.Value, nil)
		}
		if m := reChannelName.FindStringSubmatch(h.Value); m != nil {
			fresh(m[1]+m[2], m)
		}
	})
	olds := make([]string, 0, len(pairs))
	for old := range pairs {
		olds = append(olds, old)
	}
	sort.Slice(olds, func(i, j int) bool { return len(olds[i]) > len(olds[j]) }) // longest first
	var args []string
	for _, old := range olds {
		args = append(args, old, pairs[old])
	}
	r.sub = strings.NewReplacer(args...)
	r.exact[tr.attempt] = pairs[tr.attempt]
	for _, old := range olds {
		r.targets[pairs[old]] = true
	}
	for _, v := range r.exact {
		r.targets[v] = true
	}
	return r
}

// each calls f with every header of the transcript's traffic.
func (tr *transcript) each(f func(ami.Header)) {
	all := []ami.Message{tr.channel, tr.showResp, tr.keptResp}
	all = append(all, tr.kept...)
	for _, s := range tr.steps {
		all = append(all, s.action, s.resp)
		all = append(all, s.events...)
	}
	for _, m := range all {
		for _, h := range m {
			f(h)
		}
	}
}

// replayer is an Asterisk that plays transcripts: each Originate for a
// number starts the transcript recorded for it. It hands each dialler
// instance a connection (connect); a new connection is a restarted faxbox:
// the old one is closed, the replays go on and their events go to the new
// one.
type replayer struct {
	byNumber map[string]*transcript

	mu      sync.Mutex
	conn    *replayConn
	replays []*replay
	seq     int
}

func newReplayer(t testing.TB, trs map[string]*transcript) *replayer {
	p := &replayer{byNumber: trs}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.conn != nil {
			p.conn.close()
		}
	})
	return p
}

// connect closes the current connection and returns a new one.
func (p *replayer) connect() *replayConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.close()
	}
	p.conn = newReplayConn(p)
	return p.conn
}

// errorResponse is Asterisk's answer to an action it cannot do.
func errorResponse(name, msg string) (ami.Message, error) {
	m := ami.Message{{Key: "Response", Value: "Error"}, {Key: "Message", Value: msg}}
	return m, fmt.Errorf("ami: %s: %s", name, msg)
}

// action answers an action on connection c, under p.mu.
func (p *replayer) action(c *replayConn, name string, hs []ami.Header) (ami.Message, error) {
	m := action(name, hs)
	switch name {
	case "Originate":
		return p.originate(c, m)
	case "Hangup":
		for _, r := range p.replays {
			if r.targets[m.Get("Channel")] && !r.ended() && r.tr.steps[r.next].action.Get("Action") == "Hangup" {
				return p.play(c, r)
			}
		}
		return errorResponse(name, "No such channel")
	}
	return errorResponse(name, "the transcripts have no action "+name)
}

func (p *replayer) originate(c *replayConn, m ami.Message) (ami.Message, error) {
	sm := reDialledNumber.FindStringSubmatch(m.Get("Channel"))
	if sm == nil || p.byNumber[sm[1]] == nil {
		return errorResponse("Originate", "no transcript for channel "+m.Get("Channel"))
	}
	tr := p.byNumber[sm[1]]
	rec := tr.steps[0].action
	for _, k := range []string{"Context", "Exten"} {
		if m.Get(k) != rec.Get(k) {
			return errorResponse("Originate", fmt.Sprintf("%s %q, recorded %q (%s)", k, m.Get(k), rec.Get(k), tr.path))
		}
	}
	p.seq++
	r := newReplay(tr, m, p.seq)
	p.replays = append(p.replays, r)
	return p.play(c, r)
}

// play answers the replay's next action and sends the events recorded
// after it.
func (p *replayer) play(c *replayConn, r *replay) (ami.Message, error) {
	s := r.tr.steps[r.next]
	r.next++
	c.push(r.rewriteAll(s.events)...)
	resp := r.rewrite(s.resp)
	if resp.Get("Response") == "Error" {
		return resp, fmt.Errorf("ami: %s: %s", s.action.Get("Action"), resp.Get("Message"))
	}
	return resp, nil
}

// list answers a list action, under p.mu.
func (p *replayer) list(name string, hs []ami.Header) (ami.Message, []ami.Message, error) {
	m := action(name, hs)
	switch name {
	case "CoreShowChannels":
		var items []ami.Message
		for _, r := range p.replays {
			if !r.ended() && r.tr.channel != nil {
				items = append(items, r.rewrite(r.tr.channel))
			}
		}
		return ami.Message{{Key: "Response", Value: "Success"}, {Key: "EventList", Value: "start"}, {Key: "Message", Value: "Channels will follow"}}, items, nil
	case "DBGet":
		// AstDB holds a line's latest result: the last replay on the line
		// that got as far as keeping one answers.
		for _, r := range slices.Backward(p.replays) {
			if r.ended() && r.tr.kept != nil && m.Get("Family") == "faxbox-result" && m.Get("Key") == r.kept {
				return r.rewrite(r.tr.keptResp), r.rewriteAll(r.tr.kept), nil
			}
		}
		resp, err := errorResponse(name, "Database entry not found")
		return resp, nil, err
	}
	resp, err := errorResponse(name, "the transcripts have no list action "+name)
	return resp, nil, err
}

// replayConn is one manager connection to a replayer; it implements
// asterisk.Manager, and Events delivers the replays' events in order.
type replayConn struct {
	p      *replayer
	events chan ami.Message
	done   chan struct{} // closed with the connection

	mu     sync.Mutex
	queue  []ami.Message
	wake   chan struct{}
	closed bool
}

func newReplayConn(p *replayer) *replayConn {
	c := &replayConn{p: p, events: make(chan ami.Message), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go c.pump()
	return c
}

// Events returns the connection's events; the channel closes with the
// connection (events still queued are lost, as with a dead process).
func (c *replayConn) Events() <-chan ami.Message { return c.events }

func (c *replayConn) pump() {
	defer close(c.events)
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.mu.Unlock()
			<-c.wake
			continue
		}
		m := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		select {
		case c.events <- m:
		case <-c.done:
			return
		}
	}
}

func (c *replayConn) push(ms ...ami.Message) {
	c.mu.Lock()
	c.queue = append(c.queue, ms...)
	c.mu.Unlock()
	c.poke()
}

func (c *replayConn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *replayConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	c.poke()
}

func (c *replayConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Action implements asterisk.Manager.
func (c *replayConn) Action(_ context.Context, name string, hs ...ami.Header) (ami.Message, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.isClosed() {
		return nil, ami.ErrClosed
	}
	return c.p.action(c, name, hs)
}

// List implements asterisk.Manager.
func (c *replayConn) List(_ context.Context, name string, hs ...ami.Header) (ami.Message, []ami.Message, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.isClosed() {
		return nil, nil, ami.ErrClosed
	}
	return c.p.list(name, hs)
}

// action is an action message as faxbox sends it (without ActionID).
func action(name string, hs []ami.Header) ami.Message {
	return append(ami.Message{{Key: "Action", Value: name}}, hs...)
}
