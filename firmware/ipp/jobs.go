package ipp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

// JobID is an IPP job-id (1 … 2^31-1).
type JobID int32

// idBlock job-ids are reserved in the store at a time; a restart skips the
// unused rest of a block.
const idBlock = 64

// idState is the store's state entry holding the highest reserved job-id.
const idState = "ipp.job_ids"

// idAlloc hands out job-ids that survive restarts.
type idAlloc struct {
	mu          sync.Mutex
	store       *store.DB
	next, limit JobID
}

func (a *idAlloc) alloc() (JobID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == 0 {
		var high JobID
		if _, err := a.store.GetState(idState, &high); err != nil {
			return 0, fmt.Errorf("ipp: read job-id counter: %w", err)
		}
		a.next, a.limit = max(high, 0)+1, max(high, 0)
	}
	if a.next > a.limit {
		limit := a.next + idBlock - 1
		if err := a.store.PutState(idState, limit); err != nil {
			return 0, fmt.Errorf("ipp: reserve job-ids: %w", err)
		}
		a.limit = limit
	}
	id := a.next
	a.next++
	return id, nil
}

// IPP job states (RFC 8011 5.3.7).
const (
	statePending    = 3
	stateHeld       = 4
	stateProcessing = 5
	stateCanceled   = 7
	stateAborted    = 8
	stateCompleted  = 9
)

// maxPending bounds the jobs created with Create-Job and waiting for their
// last document.
const maxPending = 32

// pendingJob is a job made by Create-Job that has not reached faxbox yet
// (or ended before it did: cancelled, timed out, refused).
type pendingJob struct {
	id      JobID
	spec    *jobSpec
	docs    []*spooled
	created time.Time
	busy    bool // a Send-Document is reading into it
	state   int  // stateHeld while waiting; stateCanceled/stateAborted once ended
	message string
	ended   time.Time
	timer   *time.Timer
}

// jobMeta is what IPP knows of a submitted job beyond the faxbox job.
type jobMeta struct {
	name, user string
	faxID      string
	ended      bool // the faxbox job was seen ended
}

// maxMeta bounds the remembered job names; older ones are forgotten (the
// jobs stay visible, with their number as name).
const maxMeta = 1000

func (s *Service) allowedAddr(remote string) bool { return s.allow.ContainsAddr(remote) }

func (s *Service) printJob(rq *request) *response {
	sp, e := s.jobRequest(rq)
	if e != nil {
		return e
	}
	id, err := s.ids.alloc()
	if err != nil {
		return s.internal("allocate a job-id", err)
	}
	doc, e := s.spoolDoc(rq, id, 0)
	if e != nil {
		return e
	}
	if doc == nil {
		return fail(goipp.StatusErrorBadRequest, "Print-Job carries no document")
	}
	defer os.Remove(doc.path)
	return s.finish(rq, id, sp, []*spooled{doc})
}

// finish submits a job's documents and answers with the job's attributes.
func (s *Service) finish(rq *request, id JobID, sp *jobSpec, docs []*spooled) *response {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rq.ctx), submitTimeout)
	defer cancel()
	j, e := s.submit(ctx, rq.http.RemoteAddr, id, sp, docs)
	if e != nil {
		return e
	}
	meta := jobMeta{name: sp.name, user: sp.user, faxID: j.ID}
	s.remember(id, meta)
	s.log.Info("ipp: job submitted", "job_id", id, "fax", j.ID, "to", j.To, "user", sp.user)
	resp := &response{status: goipp.StatusOk, jobs: []goipp.Attributes{filterAttrs(s.faxJobAttrs(rq, id, j, meta), jobSummary, nil)}}
	if rq.op != goipp.OpSendDocument { // Create-Job answered for what it ignored
		resp.status, resp.unsupported = sp.ok(), sp.unsupported
	}
	return resp
}

// jobSummary are the job attributes a job creation answers with.
var jobSummary = map[string]bool{"job-id": true, "job-uri": true, "job-state": true, "job-state-reasons": true, "job-state-message": true}

func (s *Service) remember(id JobID, meta jobMeta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[id] = meta
	delete(s.pending, id)
	if len(s.names) > maxMeta {
		ids := make([]JobID, 0, len(s.names))
		for k := range s.names {
			ids = append(ids, k)
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		for _, k := range ids[:len(ids)-maxMeta] {
			delete(s.names, k)
		}
	}
}

func (s *Service) createJob(rq *request) *response {
	sp, e := s.jobRequest(rq)
	if e != nil {
		return e
	}
	s.mu.Lock()
	waiting := 0
	for _, p := range s.pending {
		if p.state == stateHeld {
			waiting++
		}
	}
	s.mu.Unlock()
	if waiting >= maxPending {
		return fail(goipp.StatusErrorBusy, "%d jobs are waiting for their documents; try again later", waiting)
	}
	id, err := s.ids.alloc()
	if err != nil {
		return s.internal("allocate a job-id", err)
	}
	p := &pendingJob{id: id, spec: sp, created: s.o.Now(), state: stateHeld}
	s.mu.Lock()
	s.pruneEnded()
	s.pending[id] = p
	p.timer = time.AfterFunc(pendingTimeout, func() { s.expire(id) })
	s.mu.Unlock()
	return &response{status: sp.ok(), unsupported: sp.unsupported,
		jobs: []goipp.Attributes{filterAttrs(s.pendingAttrs(rq, p), jobSummary, nil)}}
}

// expire aborts a created job whose last document did not come in time.
func (s *Service) expire(id JobID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p == nil || p.state != stateHeld {
		return
	}
	if p.busy {
		p.timer = time.AfterFunc(pendingTimeout/10, func() { s.expire(id) })
		return
	}
	s.endPending(p, stateAborted, "no last document within the multiple-operation-time-out")
}

// endPending ends a job that never reached faxbox; s.mu is held.
func (s *Service) endPending(p *pendingJob, state int, msg string) {
	p.state, p.message, p.ended = state, msg, s.o.Now()
	if p.timer != nil {
		p.timer.Stop()
	}
	for _, d := range p.docs {
		os.Remove(d.path)
	}
	p.docs = nil
}

// pruneEnded forgets ended pending jobs after an hour; s.mu is held.
func (s *Service) pruneEnded() {
	for id, p := range s.pending {
		if p.state != stateHeld && s.o.Now().Sub(p.ended) > time.Hour {
			delete(s.pending, id)
		}
	}
}

// jobID reads the target job of a request: job-id, or the number that ends
// job-uri.
func jobID(ops goipp.Attributes) (JobID, *response) {
	n, err := firstInt(ops, "job-id")
	if errors.Is(err, errNoAttr) {
		u := firstString(ops, "job-uri")
		if u == "" {
			return 0, fail(goipp.StatusErrorBadRequest, "job-id or job-uri is required")
		}
		n, err = strconv.Atoi(u[strings.LastIndexByte(u, '/')+1:])
	}
	if err != nil || n < 1 {
		return 0, fail(goipp.StatusErrorBadRequest, "bad job-id or job-uri")
	}
	return JobID(n), nil
}

func (s *Service) sendDocument(rq *request) *response {
	id, e := jobID(rq.msg.Operation)
	if e != nil {
		return e
	}
	last, err := firstBool(rq.msg.Operation, "last-document", false)
	if _, present := find(rq.msg.Operation, "last-document"); err != nil || !present {
		return fail(goipp.StatusErrorBadRequest, "last-document (boolean) is required")
	}
	p, e := s.claim(id)
	if e != nil {
		return e
	}
	doc, e := s.spoolDoc(rq, id, len(p.docs))
	s.mu.Lock()
	p.busy = false
	if p.state != stateHeld { // cancelled or timed out meanwhile
		s.mu.Unlock()
		if doc != nil {
			os.Remove(doc.path)
		}
		return fail(goipp.StatusErrorJobCanceled, "job %d has ended", id)
	}
	if doc != nil {
		p.docs = append(p.docs, doc)
	}
	docs, spec := p.docs, p.spec
	p.busy = last && e == nil // busy until submitted: no cancel, no timeout meanwhile
	s.mu.Unlock()
	if e != nil || !last {
		if e == nil {
			e = &response{status: goipp.StatusOk, jobs: []goipp.Attributes{filterAttrs(s.pendingAttrs(rq, p), jobSummary, nil)}}
		}
		return e
	}
	if len(docs) == 0 {
		s.mu.Lock()
		p.busy = false
		s.endPending(p, stateAborted, "the job has no document")
		s.mu.Unlock()
		return fail(goipp.StatusErrorBadRequest, "the job has no document")
	}
	resp := s.finish(rq, id, spec, docs)
	s.mu.Lock()
	p.busy = false
	if s.pending[id] == p {
		s.endPending(p, stateAborted, "refused: "+resp.message)
	}
	for _, d := range docs {
		os.Remove(d.path)
	}
	s.mu.Unlock()
	return resp
}

// claim finds the waiting job id for a Send-Document and marks it busy.
func (s *Service) claim(id JobID) (*pendingJob, *response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	switch {
	case p == nil && s.names[id].faxID != "":
		return nil, fail(goipp.StatusErrorNotPossible, "job %d has its last document already", id)
	case p == nil:
		return nil, fail(goipp.StatusErrorNotFound, "no job %d is waiting for documents", id)
	case p.state != stateHeld:
		return nil, fail(goipp.StatusErrorNotPossible, "job %d has ended: %s", id, p.message)
	case p.busy:
		return nil, fail(goipp.StatusErrorNotPossible, "job %d is receiving another document", id)
	case len(p.docs) >= 20:
		return nil, fail(goipp.StatusErrorTooManyDocuments, "at most 20 documents per job")
	}
	p.busy = true
	return p, nil
}

// lookup finds job id: a pending one, or the faxbox job with client_ref
// ipp-<id>.
func (s *Service) lookup(id JobID) (*pendingJob, *job.Job, jobMeta, *response) {
	s.mu.Lock()
	p, meta := s.pending[id], s.names[id]
	s.mu.Unlock()
	if p != nil {
		return p, nil, meta, nil
	}
	js, _, err := s.o.Store.List(store.Filter{Kind: job.KindFax, ClientRef: clientRef(id), Limit: 1})
	if err != nil {
		return nil, nil, meta, s.internal("read a job", err)
	}
	if len(js) == 0 {
		return nil, nil, meta, fail(goipp.StatusErrorNotFound, "no job %d", id)
	}
	j := js[0]
	if fresh, err := s.o.Jobs.Get(j.ID); err == nil {
		j = fresh
	}
	return nil, j, meta, nil
}

func (s *Service) getJobAttributes(rq *request) *response {
	id, e := jobID(rq.msg.Operation)
	if e != nil {
		return e
	}
	p, j, meta, e := s.lookup(id)
	if e != nil {
		return e
	}
	want := requested(rq.msg.Operation)
	attrs := s.pendingOrFax(rq, id, p, j, meta)
	return &response{status: goipp.StatusOk, jobs: []goipp.Attributes{filterAttrs(attrs, want, jobGroups)}}
}

// jobGroups names the job attribute groups a client may request.
var jobGroups = map[string]bool{"all": true, "job-description": true, "job-template": true, "job-status": true}

func (s *Service) pendingOrFax(rq *request, id JobID, p *pendingJob, j *job.Job, meta jobMeta) goipp.Attributes {
	if p != nil {
		return s.pendingAttrs(rq, p)
	}
	return s.faxJobAttrs(rq, id, j, meta)
}

func (s *Service) cancelJob(rq *request) *response {
	id, e := jobID(rq.msg.Operation)
	if e != nil {
		return e
	}
	p, j, _, e := s.lookup(id)
	if e != nil {
		return e
	}
	if p != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case p.state != stateHeld:
			return fail(goipp.StatusErrorNotPossible, "job %d has ended already", id)
		case p.busy:
			return fail(goipp.StatusErrorNotPossible, "job %d is receiving a document; cancel it once that is done", id)
		}
		s.endPending(p, stateCanceled, "cancelled")
		return &response{status: goipp.StatusOk}
	}
	if j.Status.Terminal() {
		return fail(goipp.StatusErrorNotPossible, "job %d has ended already (%s)", id, j.Status)
	}
	if _, err := s.o.Jobs.Cancel(j.ID); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return fail(goipp.StatusErrorNotFound, "no job %d", id)
		}
		return fail(goipp.StatusErrorNotPossible, "job %d cannot be cancelled: %v", id, err)
	}
	s.log.Info("ipp: job cancelled", "job_id", id, "fax", j.ID)
	return &response{status: goipp.StatusOk}
}
