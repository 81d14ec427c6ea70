package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// batchCall is one call carrying several fax jobs to one number: their pages
// go in one fax session, one job after the other, from one TIFF. The line
// knows the call by id (the dialler's attempt id, and the job id the line
// keeps its result under); each job has an attempt of its own whose Call is
// id and whose CallOffset counts the pages of the jobs before it. The call's
// result is split by pages: a job all of whose pages the far end confirmed
// is delivered even when the call broke later; the job it broke in resumes
// from its first unconfirmed page, the ones after it from where they were.
type batchCall struct {
	id      string
	group   string
	line    int
	members []*entry // in page order; a job leaves when its attempt ends
	tif     string   // the call's TIFF, removed when the last job leaves
}

// callPages is how many pages of en's job its current attempt sends.
func callPages(en *entry) int {
	j := en.rec.Job
	return j.Pages - j.LastAttempt().FirstPage + 1
}

// startBatchLocked starts one call on group/line for the jobs of ens (in
// queue order), each with an attempt of its own.
func (e *Engine) startBatchLocked(ens []*entry, group string, line int) {
	b := &batchCall{id: job.NewAttemptID(), group: group, line: line, members: ens}
	e.batches[b.id] = b
	durable := make([]<-chan error, len(ens))
	offset := 0
	for i, en := range ens {
		durable[i] = e.beginAttemptLocked(en, group, line, i == 0)
		en.batch = b
		a := en.rec.Job.LastAttempt()
		a.Call, a.CallOffset = b.id, offset
		offset += callPages(en)
	}
	e.log.Info("engine: one call for several jobs", "call", b.id, "to", ens[0].rec.Job.To, "jobs", len(ens), "pages", offset)
	e.wg.Add(1)
	go e.dialBatch(b, e.cfg.Diallers[group], durable)
}

// dialBatch prepares every job's pages, joins them into the call's TIFF,
// records where each job's pages start, and dials once. A job whose
// attempt could not be recorded or whose pages cannot be sent leaves the
// batch with its own result; the others go.
func (e *Engine) dialBatch(b *batchCall, d dialler.Dialler, durable []<-chan error) {
	defer e.wg.Done()
	e.mu.Lock()
	members := slices.Clone(b.members)
	e.mu.Unlock()
	var reqs []dialler.Request
	var ready []*entry
	for i, en := range members {
		e.mu.Lock()
		req := e.request(en.rec.Job, en.rec.Job.LastAttempt())
		e.mu.Unlock()
		if err := <-durable[i]; err != nil {
			e.abandon(req.AttemptID, err)
			continue
		}
		fail := func(code failure.Code, raw string) {
			e.Result(dialler.Result{AttemptID: req.AttemptID, Code: code, Raw: raw, EndedAt: e.cfg.Clock.Now()})
		}
		dir := e.cfg.Store.DocDir(req.JobID)
		if !e.prepareTIFF(req.Fax, req.AttemptID, filepath.Join(dir, FaxFile), dir, fail) {
			continue
		}
		reqs, ready = append(reqs, req), append(ready, en)
	}
	if len(ready) == 0 {
		return
	}
	req, ok := e.joinBatch(b, ready, reqs)
	if !ok {
		return
	}
	if err := d.Dial(e.ctx, req); err != nil {
		e.log.Warn("engine: dial failed", "call", b.id, "err", err)
		e.Result(dialler.Result{AttemptID: b.id, Code: failure.LineUnavailable, Raw: err.Error(), EndedAt: e.cfg.Clock.Now()})
		return
	}
	e.mu.Lock()
	hang := e.batches[b.id] == b && allCancelled(b)
	e.mu.Unlock()
	if hang {
		e.hangup(d, b.id)
	}
}

// joinBatch writes the call's TIFF from the prepared jobs, records each
// job's page offset in it (durably) and returns the call's request. On
// failure it ends the jobs' attempts and returns false.
func (e *Engine) joinBatch(b *batchCall, ready []*entry, reqs []dialler.Request) (dialler.Request, bool) {
	failAll := func(code failure.Code, raw string) {
		for _, r := range reqs {
			e.Result(dialler.Result{AttemptID: r.AttemptID, Code: code, Raw: raw, EndedAt: e.cfg.Clock.Now()})
		}
	}
	parts := make([]tiff.Part, len(reqs))
	for i, r := range reqs {
		parts[i] = tiff.Part{Path: r.Fax.TIFF, From: 1}
	}
	path := filepath.Join(e.cfg.Store.DocDir(reqs[0].JobID), "call-"+b.id+".tif")
	total, err := e.cfg.Docs.Join(path, parts...)
	if err != nil {
		failAll(failure.DocumentUnreadable, "join the batch's pages: "+err.Error())
		return dialler.Request{}, false
	}
	e.mu.Lock()
	if e.closed || allCancelled(b) {
		closed := e.closed
		e.mu.Unlock()
		os.Remove(path)
		if !closed {
			failAll(failure.JobCancelled, "cancelled before dialling")
		}
		return dialler.Request{}, false
	}
	b.tif = path
	offset := 0
	var durable []<-chan error
	for i, en := range ready {
		if en.batch != b {
			continue // left meanwhile
		}
		en.attemptTIF, en.dialIssued = reqs[i].Fax.TIFF, true
		en.rec.Job.LastAttempt().CallOffset = offset
		offset += reqs[i].Fax.Pages
		durable = append(durable, e.saveLocked(en))
	}
	e.mu.Unlock()
	for _, c := range durable {
		if err := <-c; err != nil {
			e.log.Warn("engine: batch offsets not recorded; a restart during the call resends its pages", "call", b.id, "err", err)
		}
	}
	req := reqs[0]
	req.AttemptID, req.JobID = b.id, b.id
	fax := *req.Fax
	// FirstPage is the first job's: the call starts where that job resumes.
	fax.TIFF, fax.Pages, fax.TotalPages = path, total, fax.FirstPage-1+total
	req.Fax = &fax
	return req, true
}

// leaveBatchLocked takes en out of its batch; the last job to leave frees
// the line and removes the call's TIFF.
func (e *Engine) leaveBatchLocked(en *entry) {
	b := en.batch
	en.batch = nil
	b.members = slices.DeleteFunc(b.members, func(m *entry) bool { return m == en })
	if len(b.members) > 0 {
		return
	}
	delete(e.batches, b.id)
	e.sched.Release(b.group, b.line)
	e.board.call(job.LineAt(b.group, b.line), dialler.LineIdle, nil, 0, 0)
	if b.tif != "" {
		os.Remove(b.tif)
	}
}

// batchResultLocked ends every job of the call with its share of r. Each
// job's attempt carries the call's media report (one, never changed); media health
// learns from the call once, through the job the call broke in (the first
// whose share failed), else the first job.
func (e *Engine) batchResultLocked(b *batchCall, r dialler.Result) {
	media := e.mediaLocked(r)
	members := slices.Clone(b.members)
	shares := make([]dialler.Result, len(members))
	learn := 0
	for i, en := range members {
		a := en.rec.Job.LastAttempt()
		shares[i] = shareOf(r, en.attemptID, a.CallOffset, callPages(en))
		if !shares[i].OK() && shares[learn].OK() {
			learn = i
		}
	}
	for i, en := range members {
		e.finishLocked(en, shares[i], media, i == learn)
	}
}

// shareOf is a batch call's result r as it concerns the job whose pages
// were offset..offset+pages of the call: delivered when the far end
// confirmed all of them, else r's failure with the pages it did confirm.
func shareOf(r dialler.Result, attemptID string, offset, pages int) dialler.Result {
	s := r
	s.AttemptID = attemptID
	if r.OK() {
		s.PagesSent = pages
		return s
	}
	s.PagesSent = min(max(r.PagesSent-offset, 0), pages)
	if s.PagesSent == pages {
		s.Code = ""
		s.Raw = fmt.Sprintf("delivered in a batch call that then ended: %s (%s)", r.Code, r.Raw)
	}
	return s
}

// batchProgressLocked records a report on the call for every job in it and
// shows the job whose pages are going out.
func (e *Engine) batchProgressLocked(b *batchCall, p dialler.Progress) {
	show := b.members[0]
	page := 0
	for _, en := range b.members {
		e.progressLocked(en, p)
		a := en.rec.Job.LastAttempt()
		if p.Page > a.CallOffset && p.Page <= a.CallOffset+callPages(en) {
			show, page = en, a.FirstPage-1+p.Page-a.CallOffset
		}
	}
	e.board.call(job.LineAt(b.group, b.line), dialler.LineStatus(p.State), show.rec.Job, page, show.rec.Job.Pages)
}

// allCancelled reports whether every job of b was cancelled (then its call
// is hung up; otherwise a cancelled job's pages still go, and it ends
// cancelled unless all of them were confirmed).
func allCancelled(b *batchCall) bool {
	for _, en := range b.members {
		if !en.cancel {
			return false
		}
	}
	return true
}

// batchOfLocked returns, for a recovered attempt a that shared a call, the
// call's batch, making it (and occupying its line) on its first job.
func (e *Engine) batchOfLocked(a *job.Attempt, j *job.Job) *batchCall {
	if b := e.batches[a.Call]; b != nil {
		return b
	}
	b := &batchCall{id: a.Call, group: a.Line.Group, line: a.Line.Index()}
	e.batches[a.Call] = b
	if err := e.sched.Occupy(b.group, b.line, j.ID, j.To); err != nil {
		e.log.Warn("engine: recover line", "call", b.id, "err", err)
	}
	return b
}
