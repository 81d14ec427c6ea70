package box

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/selftest"
)

// reFaxNumber is a number a test fax may go to.
var reFaxNumber = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

// StartSelfTest starts the self-test: a two-page fax of the box's own
// through its engine and, on a box with Asterisk, over the loop back to
// itself (package selftest); on a box without, on the test line. It
// returns the run as started; selftest.ErrRunning while one runs.
func (b *Box) StartSelfTest() (*selftest.Run, error) {
	s := b.selftests
	key := string(selftest.KindSelfTest)
	if r := s.latest(key); r != nil && r.Status == selftest.Running {
		return nil, selftest.ErrRunning
	}
	now := b.Clock.Now()
	path, to := "loopback", s.number
	if to == "" {
		path, to = "test_line", b.Cfg.TestLine.Prefix+"1"
	}
	group, err := b.Engine.Route(to, "")
	if err != nil {
		return nil, fmt.Errorf("box: self-test line: %w", err)
	}
	id := job.NewFaxID()
	stamp := now.UTC().Format(time.RFC3339)
	files, paths, err := b.textDocs(id, []string{
		"faxbox self-test\n" + stamp + "\npage 1 of 2\n",
		"faxbox self-test\n" + stamp + "\npage 2 of 2\n",
	})
	if err != nil {
		return nil, fmt.Errorf("box: self-test document: %w", err)
	}
	run := &selftest.Run{Kind: selftest.KindSelfTest, Status: selftest.Running, Path: path, JobID: id, StartedAt: now}
	if err := s.start(key, run, b.internalJob(id, selftest.InternalSelfTest, to, group, files, now), paths); err != nil {
		return nil, err
	}
	return s.latest(key), nil
}

// SelfTest returns the latest self-test run, or nil.
func (b *Box) SelfTest() *selftest.Run {
	return b.selftests.latest(string(selftest.KindSelfTest))
}

// StartQualify sends a one-page test fax through SIP trunk trunk to number
// (empty: qualify.number for the trunk) and, when it ends, scores the path
// from the attempt's media report (selftest.Score). Errors: ErrNoTrunk,
// ErrNoNumber, ErrBadNumber, ErrNoLine, ErrRunning (package selftest).
func (b *Box) StartQualify(trunk, number string) (*selftest.Run, error) {
	if trunk == "" || trunk != trunkName(b.Cfg) {
		return nil, selftest.ErrNoTrunk
	}
	if number == "" {
		number = b.Cfg.Qualify.NumberFor(trunk)
	}
	if number == "" {
		return nil, selftest.ErrNoNumber
	}
	if !reFaxNumber.MatchString(number) {
		return nil, selftest.ErrBadNumber
	}
	s, key := b.selftests, qualifyKey(trunk)
	if r := s.latest(key); r != nil && r.Status == selftest.Running {
		return nil, selftest.ErrRunning
	}
	group := trunkGroup(b.Cfg, trunk)
	if group == "" {
		return nil, selftest.ErrNoLine
	}
	group, err := b.Engine.Route(number, group)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", selftest.ErrNoLine, err)
	}
	now := b.Clock.Now()
	id := job.NewFaxID()
	files, paths, err := b.textDocs(id, []string{"faxbox trunk qualification\n" + trunk + " to " + number + "\n" + now.UTC().Format(time.RFC3339) + "\n"})
	if err != nil {
		return nil, fmt.Errorf("box: qualification document: %w", err)
	}
	run := &selftest.Run{Kind: selftest.KindQualify, Status: selftest.Running, Path: "trunk", Trunk: trunk, To: number, JobID: id, StartedAt: now}
	if err := s.start(key, run, b.internalJob(id, selftest.InternalQualify, number, group, files, now), paths); err != nil {
		return nil, err
	}
	return s.latest(key), nil
}

// Qualification returns trunk's latest qualification, or nil.
func (b *Box) Qualification(trunk string) *selftest.Run {
	return b.selftests.latest(qualifyKey(trunk))
}

// trunkGroup is the first line group that dials through SIP trunk trunk
// (its dial template PJSIP/…@trunk; a group without one dials the default
// PJSIP/%s@trunk).
func trunkGroup(c config.Config, trunk string) string {
	for _, g := range c.LineGroups {
		dial := g.Dial
		if dial == "" {
			dial = "PJSIP/%s@trunk"
		}
		if strings.HasPrefix(dial, "PJSIP/") && strings.HasSuffix(dial, "@"+trunk) {
			return g.Name
		}
	}
	return ""
}

// bootSelfTest runs the self-test once after the start (selftest.on_boot),
// as soon as the box's Asterisk answers (or after bootWait).
func (b *Box) bootSelfTest() {
	s := b.selftests
	if !b.Cfg.SelfTest.OnBoot || s == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		deadline := time.Now().Add(bootWait)
		for b.ami != nil && !b.ami.Connected() && time.Now().Before(deadline) {
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		run, err := b.StartSelfTest()
		if err != nil && !errors.Is(err, selftest.ErrRunning) {
			s.log.Error("selftest: boot self-test", "err", err)
			return
		}
		if run != nil {
			s.log.Info("selftest: boot self-test started", "job", run.JobID, "path", run.Path)
		}
	}()
}
