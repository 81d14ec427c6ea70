package box

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/scheduler"
	"github.com/faxbox/faxbox/firmware/selftest"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// Self-test and qualification limits: a run that has not ended by
// runTimeout is failed (its job is cancelled); the loop call may ring
// loopRing.
const (
	runTimeout = 15 * time.Minute
	loopRing   = 30 * time.Second
	bootWait   = 60 * time.Second // for Asterisk before the boot self-test
)

// selfTests runs the box's self-test and trunk qualifications and keeps
// their latest runs (in memory and in the store's state, as
// "selftest" and "qualify/<trunk>").
type selfTests struct {
	b      *Box
	log    *slog.Logger
	number string // the loop's number; "" without one (the test line is used)
	rxDir  string

	mu   sync.Mutex
	runs map[string]*selftest.Run
	stop chan struct{}
	wg   sync.WaitGroup
}

// addSelfTestLine adds the self-test's one line (group selftest, which
// dials only the loopback number) with its dialler on a box with
// Asterisk, and makes the box's selfTests either way. A line group of the
// config named selftest is refused.
func (b *Box) addSelfTestLine(groups []*scheduler.Group, diallers map[string]dialler.Dialler, o Options, sink dialler.Sink) ([]*scheduler.Group, error) {
	log := b.Log.With("component", "selftest")
	st := &selfTests{b: b, log: log, runs: map[string]*selftest.Run{}, stop: make(chan struct{})}
	b.selftests = st
	for _, g := range b.Cfg.LineGroups {
		if g.Name == selftest.Group {
			return nil, fmt.Errorf("box: line group name %q is reserved for the self-test", selftest.Group)
		}
	}
	a := b.Cfg.Asterisk
	if a == nil {
		return groups, nil
	}
	d := o.Diallers[selftest.Group]
	if d == nil && b.ami != nil {
		ac := asterisk.Config{Group: selftest.Group, Dial: "PJSIP/%s@" + selftest.Endpoint, RingTimeout: loopRing,
			Log: b.Log, UID: -1, GID: -1, Documents: b.Store.DocDir("")}
		if a.User != "" {
			u, err := user.Lookup(a.User)
			if err != nil {
				return nil, fmt.Errorf("box: asterisk.user %q: %w", a.User, err)
			}
			ac.UID, _ = strconv.Atoi(u.Uid)
			ac.GID, _ = strconv.Atoi(u.Gid)
		}
		ad, err := asterisk.New(ac, b.ami, sink)
		if err != nil {
			return nil, err
		}
		b.asterisk[selftest.Group] = ad
		d = ad
	}
	if d == nil {
		return groups, nil
	}
	st.number, st.rxDir = selftest.Number(a.AMISecret), receiveDir(a)
	diallers[selftest.Group] = d
	return append(groups, &scheduler.Group{Name: selftest.Group, Channels: 1, Prefixes: []string{st.number}, Test: true}), nil
}

// load restores the latest runs and follows again those a restart
// interrupted.
func (s *selfTests) load() {
	keys := []string{string(selftest.KindSelfTest)}
	if t := trunkName(s.b.Cfg); t != "" {
		keys = append(keys, qualifyKey(t))
	}
	for _, k := range keys {
		var r selftest.Run
		if ok, err := s.b.Store.GetState(k, &r); err != nil || !ok {
			continue
		}
		s.runs[k] = &r
		if r.Status == selftest.Running {
			s.follow(k, r.JobID)
		}
	}
}

func qualifyKey(trunk string) string { return "qualify/" + trunk }

// trunkName is the SIP trunk's name (asterisk.trunk.name, default trunk);
// "" without one.
func trunkName(c config.Config) string {
	if c.Asterisk == nil || c.Asterisk.Trunk == nil {
		return ""
	}
	if c.Asterisk.Trunk.Name == "" {
		return "trunk"
	}
	return c.Asterisk.Trunk.Name
}

// Latest returns a copy of the latest run under key, or nil.
func (s *selfTests) latest(key string) *selftest.Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runs[key]
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// start records run under key as running (refused while another runs
// there), creates its job and follows it.
func (s *selfTests) start(key string, run *selftest.Run, j *job.Job, docs []string) error {
	s.mu.Lock()
	if r := s.runs[key]; r != nil && r.Status == selftest.Running {
		s.mu.Unlock()
		s.b.Store.RemoveDocuments(j.ID)
		return selftest.ErrRunning
	}
	s.runs[key] = run
	s.mu.Unlock()
	rec, err := s.b.Store.Create(&store.Record{Job: j, Paths: docs})
	if err != nil {
		s.b.Store.RemoveDocuments(j.ID)
		s.mu.Lock()
		delete(s.runs, key)
		s.mu.Unlock()
		return fmt.Errorf("box: %s job: %w", run.Kind, err)
	}
	s.save(key, run)
	s.b.Engine.Submit(rec)
	s.publish(key, run)
	s.follow(key, j.ID)
	return nil
}

// save stores run as the latest under key.
func (s *selfTests) save(key string, run *selftest.Run) {
	s.mu.Lock()
	c := *run
	s.mu.Unlock()
	if err := s.b.Store.PutState(key, &c); err != nil {
		s.log.Error("selftest: keeping the run", "run", key, "err", err)
	}
}

func (s *selfTests) publish(key string, run *selftest.Run) {
	s.mu.Lock()
	sum := run.Summary()
	s.mu.Unlock()
	s.b.Bus.Publish(events.Status, map[string]string{"run": key, "result": sum})
}

// follow waits, in the background, for the run's job to end (the box's
// job events, and a look every few seconds), then finishes the run.
func (s *selfTests) follow(key, id string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sub := s.b.Bus.Subscribe(256)
		defer func() { sub.Close() }()
		deadline := time.NewTimer(runTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			j, err := s.b.Engine.Get(id)
			if errors.Is(err, engine.ErrNotFound) {
				s.end(key, nil, selftest.Error(selftest.CodeInterrupted, "the run's job is gone"))
				return
			}
			if err == nil && j.Status.Terminal() {
				s.end(key, j, nil)
				return
			}
			select {
			case <-s.stop:
				return
			case _, ok := <-sub.C:
				if !ok {
					sub = s.b.Bus.Subscribe(256)
				}
			case <-tick.C:
			case <-deadline.C:
				s.b.Engine.Cancel(id)
				s.end(key, nil, selftest.Error(selftest.CodeTimeout, fmt.Sprintf("the run did not end within %s", runTimeout)))
				return
			}
		}
	}()
}

// end finishes the run under key from its ended job j (or with e when
// there is none), stores and announces it.
func (s *selfTests) end(key string, j *job.Job, e *job.Error) {
	now := s.b.Clock.Now()
	s.mu.Lock()
	run := s.runs[key]
	if run == nil || run.Status != selftest.Running {
		s.mu.Unlock()
		return
	}
	if j == nil {
		run.Status, run.Error, run.EndedAt = selftest.Failed, e, &now
	} else {
		run.Finish(j, now)
	}
	s.mu.Unlock()
	if j != nil {
		s.check(run, j)
	}
	s.save(key, run)
	s.publish(key, run)
	s.mu.Lock()
	log := s.log.With("run", key, "job", run.JobID, "status", run.Status)
	if run.Error != nil {
		log = log.With("code", run.Error.Code, "error", run.Error.Message)
	}
	s.mu.Unlock()
	log.Info("selftest: run ended")
}

// check adds what the run's kind checks beyond delivery: the loop's
// received pages, the qualification's score.
func (s *selfTests) check(run *selftest.Run, j *job.Job) {
	switch {
	case run.Kind == selftest.KindSelfTest && run.Path == "loopback":
		path := filepath.Join(s.rxDir, selftest.ReceivedFile(j.ID))
		pages, err := tiff.Info(path)
		s.mu.Lock()
		run.CheckPages(len(pages), err)
		s.mu.Unlock()
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				s.log.Warn("selftest: removing the received file", "path", path, "err", rmErr)
			}
		}
	case run.Kind == selftest.KindSelfTest:
		s.mu.Lock()
		if run.Status == selftest.Passed && (run.Attempt == nil || run.Attempt.FirstPage+run.Attempt.PagesSent-1 != j.Pages) {
			run.Status = selftest.Failed
			run.Error = selftest.Error(selftest.CodePagesMismatch, fmt.Sprintf("the line confirmed fewer than the %d pages sent", j.Pages))
		}
		s.mu.Unlock()
	case run.Kind == selftest.KindQualify:
		q := selftest.Score(run.Attempt, selftest.DefaultMaxDatagram)
		s.mu.Lock()
		run.Qualification = &q
		s.mu.Unlock()
	}
}

// close stops following runs (the box is closing; a restart follows them
// again).
func (s *selfTests) close() {
	if s == nil {
		return
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

// internalOutbox leaves the box's own jobs (self-test, qualification) out
// of webhooks, mails and XMPP messages.
func internalOutbox(inner engine.Outbox) engine.Outbox {
	return func(j *job.Job, evs []job.Event) []*store.Delivery {
		if j.Internal != "" {
			return nil
		}
		return inner(j, evs)
	}
}

// selfTestSummary is the latest self-test in a few words (the LCD).
func (b *Box) selfTestSummary() string {
	if b.selftests == nil {
		return ""
	}
	return b.selftests.latest(string(selftest.KindSelfTest)).Summary()
}

// textDocs writes the run's pages as text documents of job id, one page
// each, and returns the job's files and their paths.
func (b *Box) textDocs(id string, pages []string) ([]job.File, []string, error) {
	var files []job.File
	var paths []string
	for i, body := range pages {
		name := fmt.Sprintf("in-%02d.text", i)
		size, sum, err := b.Store.WriteDocument(id, name, strings.NewReader(body), 1<<20)
		if err != nil {
			b.Store.RemoveDocuments(id)
			return nil, nil, err
		}
		files = append(files, job.File{Name: fmt.Sprintf("page-%d.txt", i+1), Type: "text", Size: size, SHA256: sum, Path: name})
		paths = append(paths, name)
	}
	return files, paths, nil
}

// internalJob is a job of the box's own to number to on group.
func (b *Box) internalJob(id, kind, to, group string, files []job.File, now time.Time) *job.Job {
	d := b.Cfg.Defaults
	return &job.Job{ID: id, Kind: job.KindFax, Internal: kind, To: to, Group: group, Status: job.Queued, CreatedAt: now, UpdatedAt: now,
		ClientRef: kind + "-" + now.UTC().Format("20060102T150405.000"), MaxAttempts: 1, RetryInterval: d.RetryInterval,
		ExpireAt: now.Add(runTimeout), Priority: 9, Files: files,
		Options: job.Options{Header: b.Cfg.Header, StationID: b.Cfg.StationID, Resolution: "standard", PageSize: d.PageSize, ECM: d.ECM, T38: d.T38}}
}
