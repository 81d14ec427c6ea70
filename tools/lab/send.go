package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// SendOptions describe a fax the remote sends to the box.
type SendOptions struct {
	// To is the number dialled on the box (ReceiveDIDs receive faxes).
	To string
	// G711 sends over the remote's endpoint without T.38: the box's
	// T.38 re-INVITE is refused and the fax goes as G.711 audio.
	G711 bool
	// HangupAfter > 0 hangs the call up as soon as that many pages are
	// confirmed by the box (a partial reception).
	HangupAfter int
	// File is the document: a TIFF-F as it is; a PDF, PNG, JPEG or plain
	// text file converted as faxbox converts what it sends.
	File string
	// CallerID (digits) and StationID the box sees; defaults 0301234567
	// and "LAB REMOTE".
	CallerID, StationID string
	// Timeout ends the call (default 10 minutes).
	Timeout time.Duration
}

// SendResult is what the remote saw of the call.
type SendResult struct {
	UniqueID string // the remote's channel
	Channel  string
	// PagesConfirmed is the remote's count of pages the box confirmed, as
	// last seen while the call was up (only watched with HangupAfter).
	PagesConfirmed int
	HungUp         bool // HangupAfter cut the call
	Duration       time.Duration
}

var reDigits = regexp.MustCompile(`^[0-9]{1,20}$`)

// Send makes the remote fax o.File to number o.To on the box over the
// trunk, and returns when the call has ended.
func (l *Lab) Send(ctx context.Context, o SendOptions) (SendResult, error) {
	if o.CallerID == "" {
		o.CallerID = "0301234567"
	}
	if o.StationID == "" {
		o.StationID = "LAB REMOTE"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if !reDigits.MatchString(o.To) || !reDigits.MatchString(o.CallerID) || !regexp.MustCompile(`^[A-Za-z0-9 +.-]{1,20}$`).MatchString(o.StationID) {
		return SendResult{}, fmt.Errorf("lab: send: bad number %q, caller id %q or station id %q", o.To, o.CallerID, o.StationID)
	}
	id := "labtx-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	tif, err := l.sendTIFF(ctx, o.File, id)
	if err != nil {
		return SendResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := ami.Dial(ctx, ami.Config{Addr: l.Remote.AMIAddr(), Username: RemoteAMIUser, Secret: RemoteAMISecret})
	if err != nil {
		return SendResult{}, fmt.Errorf("lab: send: the remote's manager: %w", err)
	}
	defer c.Close()
	w := &sessionWatch{pages: map[string]int{}, failed: map[string]bool{}}
	go w.read(c.Events())
	endpoint := "box"
	if o.G711 {
		endpoint = "box-g711"
	}
	start := time.Now()
	_, err = c.Action(ctx, "Originate", ami.Header{Key: "Channel", Value: "PJSIP/" + o.To + "@" + endpoint},
		ami.Header{Key: "Context", Value: "to-box"}, ami.Header{Key: "Exten", Value: "send"}, ami.Header{Key: "Priority", Value: "1"},
		ami.Header{Key: "ChannelId", Value: id}, ami.Header{Key: "Async", Value: "true"}, ami.Header{Key: "Timeout", Value: "30000"},
		ami.Header{Key: "CallerID", Value: `"` + o.StationID + `" <` + o.CallerID + `>`},
		ami.Header{Key: "Variable", Value: "LABFILE=" + tif}, ami.Header{Key: "Variable", Value: "LABSTATION=" + o.StationID})
	if err != nil {
		return SendResult{}, fmt.Errorf("lab: send: originate: %w", err)
	}
	res, err := l.followSend(ctx, c, w, id, o.HangupAfter)
	res.UniqueID, res.Duration = id, time.Since(start)
	return res, err
}

// sendTIFF puts the document, as a TIFF-F, where the remote reads it: a
// TIFF-F as it is; PDF, PNG, JPEG or plain text converted by faxbox's own
// converter (standard resolution, A4).
func (l *Lab) sendTIFF(ctx context.Context, file, id string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("lab: send: %w", err)
	}
	dir := filepath.Join(l.Opts.Dir, "tx")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, id+".tif")
	typ, err := convert.Sniff(b)
	if err != nil {
		return "", fmt.Errorf("lab: send: %s: %w", file, err)
	}
	if _, err := tiff.Check(file, convert.Width); err == nil {
		err = os.WriteFile(dst, b, 0o644)
		if err != nil {
			return "", err
		}
	} else if _, err := convert.New(convert.Config{}).Convert(ctx, []convert.Input{{Path: file, Type: typ}}, dst,
		convert.Options{Resolution: "standard", PageSize: "a4"}); err != nil {
		return "", fmt.Errorf("lab: send: convert %s: %w", file, err)
	}
	return dst, os.Chmod(dst, 0o644)
}

// sessionWatch keeps the pages each fax session (by channel) has
// transmitted, from FAXSession events.
type sessionWatch struct {
	mu    sync.Mutex
	pages map[string]int
	// failed: channels (by Uniqueid) whose Originate failed (refused,
	// busy, unanswered).
	failed map[string]bool
}

func (w *sessionWatch) read(evs <-chan ami.Message) {
	for m := range evs {
		if m.Event() == "OriginateResponse" && m.Get("Response") != "Success" {
			w.mu.Lock()
			w.failed[m.Get("Uniqueid")] = true
			w.mu.Unlock()
		}
		if m.Event() == "FAXSession" {
			n, err := strconv.Atoi(m.Get("PagesTransmitted"))
			if err == nil {
				w.mu.Lock()
				w.pages[m.Get("SessionNumber")] = n
				w.mu.Unlock()
			}
		}
	}
}

func (w *sessionWatch) originateFailed(uid string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed[uid]
}

func (w *sessionWatch) get(session string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pages[session]
}

// followSend waits for the remote's channel id to end; with hangupAfter it
// asks for the fax session's page count meanwhile and hangs up once the
// box has confirmed that many pages.
func (l *Lab) followSend(ctx context.Context, c *ami.Client, w *sessionWatch, id string, hangupAfter int) (SendResult, error) {
	var res SendResult
	seen := time.Now()
	for {
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("lab: send: the call did not end: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
		_, chans, err := c.List(ctx, "CoreShowChannels")
		if err != nil {
			return res, fmt.Errorf("lab: send: %w", err)
		}
		up := false
		for _, ch := range chans {
			if ch.Get("Uniqueid") == id {
				up, res.Channel = true, ch.Get("Channel")
			}
		}
		if !up {
			if res.Channel != "" || w.originateFailed(id) || time.Since(seen) > 35*time.Second {
				return res, nil // ended (or never came up: refused, busy)
			}
			continue
		}
		if hangupAfter <= 0 || res.HungUp {
			continue
		}
		if res.PagesConfirmed = l.sessionPages(ctx, c, w, res.Channel); res.PagesConfirmed >= hangupAfter {
			if _, err := c.Action(ctx, "Hangup", ami.Header{Key: "Channel", Value: res.Channel}, ami.Header{Key: "Cause", Value: "16"}); err == nil {
				res.HungUp = true
			}
		}
	}
}

// sessionPages returns how many pages the fax session on channel has
// transmitted (confirmed by the receiver); 0 before it starts.
func (l *Lab) sessionPages(ctx context.Context, c *ami.Client, w *sessionWatch, channel string) int {
	_, ss, err := c.List(ctx, "FAXSessions")
	if err != nil {
		return 0
	}
	for _, s := range ss {
		if s.Get("Channel") != channel {
			continue
		}
		n := s.Get("SessionNumber")
		if _, err := c.Action(ctx, "FAXSession", ami.Header{Key: "SessionNumber", Value: n}); err != nil {
			return 0
		}
		time.Sleep(50 * time.Millisecond) // the FAXSession event follows the answer
		return w.get(n)
	}
	return 0
}
