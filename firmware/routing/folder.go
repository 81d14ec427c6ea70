package routing

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/mail"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/webhook"
	"github.com/faxbox/faxbox/internal/atomicfile"
)

// MethodFolder marks a folder write among the store's deliveries: its URL
// is the folder, its JobID the received fax.
const MethodFolder = "FOLDER"

// folders writes the queued folder deliveries, retrying failures with the
// webhooks' backoff until they succeed.
type folders struct {
	r *Router

	mu      sync.Mutex
	pending map[string]clock.Timer // delivery id → its next try
	failing map[string]string      // delivery id → last error
	closed  bool
	wg      sync.WaitGroup
}

func newFolders(r *Router) *folders {
	return &folders{r: r, pending: map[string]clock.Timer{}, failing: map[string]string{}}
}

// Take starts the folder writes among ds and returns the other deliveries
// (webhooks, XMPP) for the box to hand on.
func (r *Router) Take(ds []*store.Delivery) []*store.Delivery {
	var rest []*store.Delivery
	for _, d := range ds {
		if d.Method == MethodFolder {
			r.folders.schedule(d)
		} else {
			rest = append(rest, d)
		}
	}
	return rest
}

// Close stops the folder writes (queued ones stay in the store's outbox
// for the next start) and waits for one in progress.
func (r *Router) Close() {
	f := r.folders
	f.mu.Lock()
	f.closed = true
	for id, t := range f.pending {
		t.Stop()
		delete(f.pending, id)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *folders) schedule(d *store.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.pending[d.ID] != nil {
		return
	}
	wait := max(d.NextAt.Sub(f.r.cfg.Clock.Now()), 0)
	f.pending[d.ID] = f.r.cfg.Clock.AfterFunc(wait, func() { f.fire(d) })
}

func (f *folders) fire(d *store.Delivery) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()
	name, err := f.r.writeFolder(d)
	st := f.r.cfg.Store
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	delete(f.pending, d.ID)
	if err == nil {
		delete(f.failing, d.ID)
		if err := st.Delivered(d, false); err != nil {
			f.r.log.Error("routing: record the folder write", "delivery", d.ID, "err", err)
		}
		if name != "" {
			f.r.log.Info("routing: fax written to folder", "id", d.JobID, "file", name)
		}
		return
	}
	d.Attempts++
	d.LastError = err.Error()
	f.failing[d.ID] = fmt.Sprintf("%s: %v", d.URL, err)
	wait := webhook.Backoff(f.r.cfg.Retry, d.Attempts)
	d.NextAt = f.r.cfg.Clock.Now().Add(wait)
	f.r.log.Warn("routing: folder write failed; will retry", "id", d.JobID, "folder", d.URL, "try", d.Attempts, "in", wait, "err", err)
	if err := st.UpdateDelivery(d); err != nil {
		f.r.log.Error("routing: record the folder retry", "delivery", d.ID, "err", err)
	}
	f.pending[d.ID] = f.r.cfg.Clock.AfterFunc(wait, func() { f.fire(d) })
}

// writeFolder writes the document of d's fax into d's folder (an existing
// directory: a share that is not mounted is not written under its mount
// point) under a unique name, and returns the file's path ("" when the fax
// has no page, or was deleted: nothing to write).
func (r *Router) writeFolder(d *store.Delivery) (string, error) {
	id := inbox.ID(d.JobID)
	fx, err := r.cfg.Store.GetReceived(id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	src, format := document(fx, r.cfg.Store.DocDir(string(id)))
	if src == "" {
		return "", nil
	}
	if fi, err := os.Stat(d.URL); err != nil {
		return "", fmt.Errorf("routing: folder: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("routing: folder %s is not a directory", d.URL)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("routing: read %s: %w", src, err)
	}
	ext := ".pdf"
	if format == "tiff" {
		ext = ".tif"
	}
	dst := filepath.Join(d.URL, FileName(fx)+ext)
	if err := atomicfile.Write(dst, b, 0o640); err != nil {
		return "", err
	}
	return dst, nil
}

// FileName is the name (without extension) a fax is written under in a
// folder: the time it ended (UTC), the caller and its id, so names are
// unique and sort by time: "20261203-074512_0301234567_rx_01k…".
func FileName(f *inbox.Fax) string {
	caller := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '+' {
			return r
		}
		return -1
	}, f.CallerID)
	if caller == "" {
		caller = "unknown"
	}
	t := f.EndedAt
	if t.IsZero() {
		t = f.CreatedAt
	}
	return t.UTC().Format("20060102-150405") + "_" + caller + "_" + string(f.ID)
}

// Alarm is the alarm raised while a routed fax cannot be delivered.
const Alarm = "fax routing failing"

// alarmWindow is how long a delivery given up (a webhook dead letter, a
// mail refused for good) keeps the alarm on.
const alarmWindow = 24 * time.Hour

// Problem returns why routing is in alarm ("" when it is not): a fax whose
// routing failed, a folder write or a webhook of a received fax failing
// (being retried), a routed mail not yet accepted after a failed try or
// refused, or a webhook of a received fax given up in the last 24 hours.
// The store and the mail outbox are looked at no more than every 2
// seconds.
func (r *Router) Problem() string {
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	why := anyOf(r.failing)
	r.mu.Unlock()
	if why == "" {
		why = r.folders.problem()
	}
	if why != "" {
		return why
	}
	r.mu.Lock()
	if now.Sub(r.lastCheck) < 2*time.Second && !r.lastCheck.IsZero() {
		defer r.mu.Unlock()
		return r.lastAlarm
	}
	mails := make([]string, 0, len(r.mails))
	for id, at := range r.mails {
		if now.Sub(at) > alarmWindow {
			delete(r.mails, id)
			continue
		}
		mails = append(mails, id)
	}
	r.mu.Unlock()
	why = r.storeProblem(now)
	if why == "" {
		why = r.mailProblem(mails)
	}
	r.mu.Lock()
	r.lastCheck, r.lastAlarm = now, why
	r.mu.Unlock()
	return why
}

func (f *folders) problem() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if why := anyOf(f.failing); why != "" {
		return "folder " + why
	}
	return ""
}

// anyOf returns the smallest key of m with its value ("" when m is empty).
func anyOf[K ~string](m map[K]string) string {
	var best K
	for k := range m {
		if best == "" || k < best {
			best = k
		}
	}
	if best == "" {
		return ""
	}
	return string(best) + ": " + m[best]
}

// storeProblem looks for webhooks of received faxes failing or given up.
func (r *Router) storeProblem(now time.Time) string {
	ds, err := r.cfg.Store.Outbox()
	if err != nil {
		return "outbox: " + err.Error()
	}
	for _, d := range ds {
		if strings.HasPrefix(d.JobID, inbox.Prefix) && d.Method != MethodFolder && d.Attempts > 0 {
			return fmt.Sprintf("%s: %s %s: %s", d.JobID, d.Method, redact(d.URL), d.LastError)
		}
	}
	dead, err := r.cfg.Store.DeadLetters()
	if err != nil {
		return "outbox: " + err.Error()
	}
	for _, d := range dead {
		if strings.HasPrefix(d.JobID, inbox.Prefix) && now.Sub(d.CreatedAt) < alarmWindow {
			return fmt.Sprintf("%s: %s %s given up: %s", d.JobID, d.Method, redact(d.URL), d.LastError)
		}
	}
	return ""
}

// mailProblem looks at the routed mails queued lately.
func (r *Router) mailProblem(ids []string) string {
	if r.cfg.Mail == nil {
		return ""
	}
	for _, id := range ids {
		rec, err := r.cfg.Mail.Get(id)
		if err != nil {
			continue
		}
		if rec.State == mail.Refused || rec.State == mail.Queued && rec.Attempts > 0 {
			return fmt.Sprintf("%s: mail to %s: %s", rec.Message.Ref, strings.Join(rec.Message.To, ", "), rec.LastError)
		}
	}
	return ""
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
