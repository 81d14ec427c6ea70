// Package receiving turns the faxes Asterisk receives into durable inbox
// records and announces them.
//
// Contracts:
//   - A reception is recorded once (keyed by its Asterisk Uniqueid), whether
//     the live FaxboxReceived event, the result the dialplan kept in AstDB,
//     or the start-up scan of the receive directory reports it.
//   - The record is written before anyone is told: the TIFF (copied out of
//     Asterisk's receive directory) and its PDF are fsynced, then the record
//     and the fax.received webhook (when inbox.webhook_url is set) are
//     committed in one transaction; only then is the event published, the
//     webhook sent and the Router called.
//   - A PDF is handed on only after its page count (read back by
//     ghostscript) matches the TIFF's; otherwise the record says pdf: false.
//   - A restart loses nothing Asterisk wrote: Recover, run once the manager
//     connection is up, records every TIFF left in the receive directory and
//     every kept result that has no record, except receptions whose channel
//     is still up (their event comes later).
//   - Routing rules plug in through Router; a fax whose routing did not
//     finish is routed again by Recover.
package receiving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/atomicfile"
	"github.com/faxbox/faxbox/spandsp"
	"github.com/oklog/ulid/v2"
)

// Source is what Asterisk tells of receptions (asterisk.Receiver).
type Source interface {
	// Reception returns the reception a FaxboxReceived event reports.
	Reception(m ami.Message) (inbox.Reception, bool)
	// Kept returns the result kept in AstDB for reception uid.
	Kept(ctx context.Context, uid string) (inbox.Reception, bool)
	// KeptAll returns every kept result.
	KeptAll(ctx context.Context) ([]inbox.Reception, error)
	// Live returns the Uniqueids of the channels up now.
	Live(ctx context.Context) (map[string]bool, error)
	// File returns the TIFF path of reception uid.
	File(uid string) string
}

// Forgetter is a Source that can delete the results it kept for
// receptions that are recorded (Asterisk: from AstDB), so that later
// starts do not list them again.
type Forgetter interface {
	Forget(ctx context.Context, uids ...string) error
}

// Router routes a received fax after its record is durable (routing
// rules: webhooks by rule, e-mail, folders). Route must be idempotent: a
// fax whose Route did not return nil is routed again (by Recover at the
// next start). The inbox always keeps the fax, whatever Route does.
type Router interface {
	Route(ctx context.Context, f *inbox.Fax, docDir string) error
}

// Config of a Service.
type Config struct {
	Store  *store.DB
	Source Source
	Bus    *events.Bus
	// Enqueue hands committed deliveries to the webhook sender.
	Enqueue func([]*store.Delivery)
	// WebhookURL receives fax.received (inbox.webhook_url); "" none.
	WebhookURL string
	Router     Router
	Clock      clock.Clock
	Log        *slog.Logger
	// PDF makes pdf from tif and checks it has pages pages (default:
	// tiff2pdf, then ghostscript counts the pages).
	PDF func(ctx context.Context, tif, pdf string, pages int) error
}

// Service records receptions.
type Service struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	inflight map[string]bool // receptions being recorded, by uid
	wg       sync.WaitGroup
	closed   bool
}

// maxTIFF caps the size of a received TIFF faxbox copies (a 100-page fine
// fax is a few MB).
const maxTIFF = 256 << 20

// New returns a service; Handle receives events, Recover scans at start.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PDF == nil {
		cfg.PDF = MakePDF
	}
	if cfg.Enqueue == nil {
		cfg.Enqueue = func([]*store.Delivery) {}
	}
	return &Service{cfg: cfg, log: cfg.Log.With("component", "receiving"), inflight: map[string]bool{}}
}

// Handle takes a manager event; it reports whether the event was a
// reception (then recorded in the background: the event reader must not
// wait for the disk or for ghostscript).
func (s *Service) Handle(m ami.Message) bool {
	rx, ok := s.cfg.Source.Reception(m)
	if !ok {
		return false
	}
	s.start(func() {
		if _, err := s.Record(context.Background(), rx, false); err != nil {
			s.log.Error("receiving: record", "reception", rx.UniqueID, "err", err)
		}
	})
	return true
}

func (s *Service) start(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
}

// Close waits for the receptions being recorded.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// Record records reception rx (recovered: found at start-up, not reported
// live) and announces it. A reception recorded before returns its fax and
// nil; one being recorded by another caller returns nil, nil.
func (s *Service) Record(ctx context.Context, rx inbox.Reception, recovered bool) (*inbox.Fax, error) {
	if id, ok := s.cfg.Store.ReceivedSource(rx.UniqueID); ok {
		s.removeSource(rx)
		s.forget(ctx, rx.UniqueID)
		return s.cfg.Store.GetReceived(id)
	}
	s.mu.Lock()
	if s.inflight[rx.UniqueID] {
		s.mu.Unlock()
		return nil, nil
	}
	s.inflight[rx.UniqueID] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, rx.UniqueID)
		s.mu.Unlock()
	}()
	f := s.describe(rx, recovered)
	dir := s.cfg.Store.DocDir(string(f.ID))
	if err := s.documents(ctx, rx, f, dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ds, err := s.deliveries(f)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if have, err := s.cfg.Store.PutReceived(f, s.cfg.Router != nil, ds...); errors.Is(err, store.ErrExists) {
		os.RemoveAll(dir)
		s.removeSource(rx)
		s.forget(ctx, rx.UniqueID)
		return s.cfg.Store.GetReceived(have)
	} else if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("receiving: record %s: %w", rx.UniqueID, err)
	}
	s.log.Info("receiving: fax recorded", "id", f.ID, "status", f.Status, "pages", f.Pages, "caller", f.CallerID,
		"did", f.DID, "port", f.Port, "transport", f.Transport, "recovered", recovered)
	s.cfg.Enqueue(ds)
	if s.cfg.Bus != nil {
		s.cfg.Bus.Publish(string(inbox.Event), f)
	}
	s.removeSource(rx)
	s.forget(ctx, rx.UniqueID)
	s.route(ctx, f)
	return f, nil
}

// describe builds the record of rx (documents not yet looked at).
func (s *Service) describe(rx inbox.Reception, recovered bool) *inbox.Fax {
	now := s.cfg.Clock.Now()
	f := &inbox.Fax{ID: inbox.NewID(), Source: rx.UniqueID, CallerID: rx.CallerID, DID: rx.DID, Channel: rx.Channel,
		Port: port(rx.Channel), RemoteStationID: rx.RemoteStationID, Pages: rx.Pages, BitRate: rx.BitRate,
		Resolution: resolution(rx.Resolution), ECM: rx.ECM, StartedAt: rx.Started, EndedAt: rx.Ended, CreatedAt: now, Recovered: recovered}
	switch strings.ToLower(rx.Mode) {
	case "t38":
		f.Transport = inbox.T38
	case "audio":
		f.Transport = inbox.G711
	}
	if f.EndedAt.IsZero() {
		f.EndedAt = now
	}
	if !f.StartedAt.IsZero() && f.EndedAt.After(f.StartedAt) {
		f.DurationSeconds = int(f.EndedAt.Sub(f.StartedAt).Round(time.Second) / time.Second)
	}
	return f
}

// documents copies the received TIFF into dir, makes and checks its PDF,
// and sets the fax's pages, status and error from what arrived. Everything
// written is fsynced before it returns.
func (s *Service) documents(ctx context.Context, rx inbox.Reception, f *inbox.Fax, dir string) error {
	pages, tiffErr := s.copyTIFF(rx.File, dir)
	if tiffErr != nil && !errors.Is(tiffErr, os.ErrNotExist) {
		s.log.Warn("receiving: the received TIFF is unusable", "reception", rx.UniqueID, "file", rx.File, "err", tiffErr)
	}
	if errors.Is(tiffErr, errDisk) {
		return tiffErr
	}
	f.TIFF = tiffErr == nil && pages > 0
	if f.TIFF {
		if pages != rx.Pages && rx.Status != "" {
			s.log.Warn("receiving: Asterisk's page count differs from the TIFF's", "reception", rx.UniqueID, "reported", rx.Pages, "tiff", pages)
		}
		f.Pages = pages
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := s.cfg.PDF(pctx, filepath.Join(dir, inbox.TIFFFile), filepath.Join(dir, inbox.PDFFile), pages)
		cancel()
		if err != nil {
			os.Remove(filepath.Join(dir, inbox.PDFFile))
			s.log.Error("receiving: no PDF for the received fax", "id", f.ID, "err", err)
		}
		f.PDF = err == nil
	} else {
		f.Pages = 0
	}
	f.Status, f.Error = outcome(rx, f.Pages, tiffErr)
	return nil
}

var errDisk = errors.New("receiving: cannot write the documents")

// copyTIFF copies src into dir (fsynced) and returns its page count. A
// missing src wraps os.ErrNotExist; a TIFF that does not parse is not
// copied; a write failure wraps errDisk.
func (s *Service) copyTIFF(src, dir string) (int, error) {
	if src == "" {
		return 0, os.ErrNotExist
	}
	fi, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 0, os.ErrNotExist // ReceiveFAX opened the file, no page came
	}
	if fi.Size() > maxTIFF {
		return 0, fmt.Errorf("receiving: %s is %d bytes", src, fi.Size())
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return 0, err
	}
	pf, err := tiff.Parse(b)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range pf.Pages {
		if pf.CheckStrips(i) != nil {
			break // a page cut short (the box stopped while it arrived)
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("receiving: %s has no complete page", src)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("%w: %v", errDisk, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return 0, fmt.Errorf("%w: %v", errDisk, err)
	}
	// A page cut short stays in the copy (the TIFF is kept as Asterisk
	// wrote it); only the complete pages count.
	err = atomicfile.Write(filepath.Join(dir, inbox.TIFFFile), b, 0o640)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errDisk, err)
	}
	return n, nil
}

// outcome decides the status and error of a reception with pages pages.
func outcome(rx inbox.Reception, pages int, tiffErr error) (inbox.Status, *job.Error) {
	if rx.Status == "" {
		// No result from Asterisk: it stopped (or was stopped) during the
		// call. What it wrote is kept.
		raw := "Asterisk reported no result: the reception was cut short by a restart"
		if pages > 0 {
			return inbox.Partial, job.NewError(failure.LineInterrupted, raw)
		}
		return inbox.Failed, job.NewError(failure.LineInterrupted, raw)
	}
	v := spandsp.Classify(spandsp.Outcome{Answered: true, HaveResult: true, Status: rx.Status, Error: rx.Error,
		StatusStr: rx.StatusStr, Pages: rx.Pages, HangupCause: -1, Reason: -1})
	if v.Code == "" {
		if pages == 0 {
			raw := "Asterisk reported success, but no page could be read"
			if tiffErr != nil {
				raw += ": " + tiffErr.Error()
			}
			return inbox.Failed, job.NewError(failure.DocumentUnreadable, raw)
		}
		return inbox.Received, nil
	}
	if pages > 0 {
		code := v.Code
		if code == failure.FaxRemoteNotFax {
			code = failure.FaxRemoteHangup // pages came: a fax machine that stopped
		}
		return inbox.Partial, job.NewError(code, v.Raw)
	}
	return inbox.Failed, job.NewError(v.Code, v.Raw)
}

// resolution turns FAXOPT(resolution), pixels per metre ("8031x3850"),
// into dots per inch ("204x98"); anything else is kept as it is.
func resolution(s string) string {
	x, y, ok := strings.Cut(s, "x")
	xn, errx := strconv.Atoi(x)
	yn, erry := strconv.Atoi(y)
	if !ok || errx != nil || erry != nil || xn < 1000 || yn < 1000 {
		return s
	}
	dpi := func(n int) string { return strconv.Itoa(int(float64(n)*0.0254 + 0.5)) }
	return dpi(xn) + "x" + dpi(yn)
}

// port returns the DAHDI channel number of channel name "DAHDI/3-1", or "".
func port(channel string) string {
	rest, ok := strings.CutPrefix(channel, "DAHDI/")
	if !ok {
		return ""
	}
	n, _, _ := strings.Cut(rest, "-")
	if n == "" || strings.Trim(n, "0123456789") != "" {
		return ""
	}
	return n
}

// Payload is the body of the fax.received webhook.
type Payload struct {
	Event job.Event  `json:"event"`
	Data  *inbox.Fax `json:"data"`
}

// deliveries builds the fax.received webhook for f (none without a URL).
func (s *Service) deliveries(f *inbox.Fax) ([]*store.Delivery, error) {
	if s.cfg.WebhookURL == "" {
		return nil, nil
	}
	body, err := json.Marshal(Payload{Event: inbox.Event, Data: f})
	if err != nil {
		return nil, fmt.Errorf("receiving: webhook body: %w", err)
	}
	t := s.cfg.Clock.Now()
	return []*store.Delivery{{ID: "dl_" + strings.ToLower(ulid.Make().String()), JobID: string(f.ID), Event: inbox.Event,
		Method: http.MethodPost, URL: s.cfg.WebhookURL, Body: body, CreatedAt: t, NextAt: t}}, nil
}

// route hands f to the Router and records that it was routed.
func (s *Service) route(ctx context.Context, f *inbox.Fax) {
	if s.cfg.Router == nil {
		return
	}
	if err := s.cfg.Router.Route(ctx, f, s.cfg.Store.DocDir(string(f.ID))); err != nil {
		s.log.Error("receiving: routing failed; the fax stays in the inbox and is routed again at the next start", "id", f.ID, "err", err)
		return
	}
	if err := s.cfg.Store.MarkRouted(f.ID); err != nil {
		s.log.Error("receiving: record routing", "id", f.ID, "err", err)
	}
}

// removeSource deletes the reception's TIFF from Asterisk's receive
// directory once it is recorded (best effort: a TIFF left there is found
// recorded at the next scan and removed then).
func (s *Service) removeSource(rx inbox.Reception) {
	if rx.File == "" {
		return
	}
	if err := os.Remove(rx.File); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("receiving: cannot remove the recorded TIFF from the receive directory", "file", rx.File, "err", err)
	}
}

// forget tells a Forgetter source that receptions uids are recorded (best
// effort: a result still kept is found recorded at the next start, and
// forgotten then).
func (s *Service) forget(ctx context.Context, uids ...string) {
	f, ok := s.cfg.Source.(Forgetter)
	if !ok || len(uids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, forgetTimeout)
	defer cancel()
	if err := f.Forget(ctx, uids...); err != nil {
		s.log.Warn("receiving: the kept results of recorded receptions were not deleted; they are listed again at the next start", "receptions", len(uids), "err", err)
	}
}

// forgetTimeout bounds one forget (Asterisk: a Local channel per 50).
const forgetTimeout = 30 * time.Second

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
