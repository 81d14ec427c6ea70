package ipp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

// jobState maps a faxbox job's status to the IPP job-state and its
// job-state-reasons.
func jobState(j *job.Job, now time.Time) (int, []string) {
	switch j.Status {
	case job.Queued, job.Ready:
		if j.SendAt != nil && j.SendAt.After(now) {
			return stateHeld, []string{"job-hold-until-specified"}
		}
		return statePending, []string{"job-queued"}
	case job.RetryWait:
		return statePending, []string{"job-queued"}
	case job.Converting:
		return stateProcessing, []string{"job-transforming"}
	case job.Dialing, job.Sending:
		return stateProcessing, []string{"job-printing"}
	case job.Delivered:
		return stateCompleted, []string{"job-completed-successfully"}
	case job.Cancelled:
		return stateCanceled, []string{"job-canceled-by-user"}
	case job.Failed:
		return stateAborted, []string{"job-completed-with-errors", "aborted-by-system"}
	}
	return statePending, []string{"none"}
}

// stateMessage says in words where a faxbox job stands.
func stateMessage(j *job.Job) string {
	msg := fmt.Sprintf("fax %s to %s: %s", j.ID, j.To, j.Status)
	if j.Pages > 0 {
		msg += fmt.Sprintf(", %d of %d pages sent", j.PagesConfirmed, j.Pages)
	}
	if j.Error != nil {
		msg += " (" + j.Error.Message + ")"
	}
	return msg
}

func jobURI(rq *request, id JobID) string {
	return printerURI(rq.http) + "/" + strconv.Itoa(int(id))
}

func (s *Service) upAt(t time.Time) int {
	return max(int(t.Sub(s.o.Started)/time.Second), 0)
}

func noValue(name string) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagNoValue, goipp.Void{})
}

// commonAttrs are the attributes of every job, pending or submitted.
func (s *Service) commonAttrs(rq *request, id JobID, name, user string, state int, reasons []string, msg string, created time.Time) goipp.Attributes {
	if user == "" {
		user = "anonymous"
	}
	return goipp.Attributes{
		ints("job-id", goipp.TagInteger, int(id)), uri("job-uri", jobURI(rq, id)),
		uri("job-printer-uri", printerURI(rq.http)),
		ints("job-state", goipp.TagEnum, state), kw("job-state-reasons", reasons...),
		text("job-state-message", truncate(msg, 255)),
		strAttr("job-name", goipp.TagName, truncate(name, 255)),
		strAttr("job-originating-user-name", goipp.TagName, truncate(user, 255)),
		ints("job-printer-up-time", goipp.TagInteger, s.upTime()),
		ints("time-at-creation", goipp.TagInteger, s.upAt(created)),
		goipp.MakeAttr("date-time-at-creation", goipp.TagDateTime, goipp.Time{Time: created}),
	}
}

// destinationAttrs describe a job's one destination.
func destinationAttrs(to string, state, pages int) goipp.Attributes {
	dest := goipp.Collection{uri("destination-uri", "tel:"+to)}
	status := goipp.Collection{uri("destination-uri", "tel:"+to), ints("images-completed", goipp.TagInteger, pages),
		ints("transmission-status", goipp.TagEnum, state)}
	return goipp.Attributes{colAttr("destination-uris", dest), colAttr("destination-statuses", status)}
}

// faxJobAttrs are the attributes of a job that reached faxbox.
func (s *Service) faxJobAttrs(rq *request, id JobID, j *job.Job, meta jobMeta) goipp.Attributes {
	state, reasons := jobState(j, s.o.Now())
	name := meta.name
	if name == "" {
		name = "fax to " + j.To
	}
	a := s.commonAttrs(rq, id, name, meta.user, state, reasons, stateMessage(j), j.CreatedAt)
	a = append(a,
		ints("number-of-documents", goipp.TagInteger, len(j.Files)),
		ints("job-impressions", goipp.TagInteger, j.Pages),
		ints("job-impressions-completed", goipp.TagInteger, j.PagesConfirmed),
		ints("job-media-sheets-completed", goipp.TagInteger, j.PagesConfirmed),
		ints("number-of-retries", goipp.TagInteger, max(j.MaxAttempts-1, 0)),
		ints("retry-interval", goipp.TagInteger, int(j.RetryInterval.D()/time.Second)),
	)
	if len(j.Attempts) > 0 {
		a = append(a, ints("time-at-processing", goipp.TagInteger, s.upAt(j.Attempts[0].StartedAt)))
	} else {
		a = append(a, noValue("time-at-processing"))
	}
	if j.CompletedAt != nil {
		a = append(a, ints("time-at-completed", goipp.TagInteger, s.upAt(*j.CompletedAt)),
			goipp.MakeAttr("date-time-at-completed", goipp.TagDateTime, goipp.Time{Time: *j.CompletedAt}))
	} else {
		a = append(a, noValue("time-at-completed"))
	}
	return append(a, destinationAttrs(j.To, state, j.PagesConfirmed)...)
}

// pendingAttrs are the attributes of a job that has not reached faxbox.
func (s *Service) pendingAttrs(rq *request, p *pendingJob) goipp.Attributes {
	s.mu.Lock()
	state, msg, ndocs := p.state, p.message, len(p.docs)
	s.mu.Unlock()
	reasons := []string{"job-incoming"}
	switch state {
	case stateCanceled:
		reasons = []string{"job-canceled-by-user"}
	case stateAborted:
		reasons = []string{"aborted-by-system"}
	default:
		msg = "waiting for the last document"
	}
	name := p.spec.name
	if name == "" {
		name = "fax to " + p.spec.to
	}
	a := s.commonAttrs(rq, p.id, name, p.spec.user, state, reasons, msg, p.created)
	a = append(a, ints("number-of-documents", goipp.TagInteger, ndocs), noValue("time-at-processing"))
	if state == stateHeld {
		a = append(a, noValue("time-at-completed"))
	} else {
		a = append(a, ints("time-at-completed", goipp.TagInteger, s.upAt(p.ended)))
	}
	return append(a, destinationAttrs(p.spec.to, state, 0)...)
}

// scanLimit bounds the faxbox jobs one Get-Jobs reads.
const scanLimit = 2000

// ippJobs lists the faxbox jobs made through IPP, newest first, reading at
// most scanLimit jobs.
func (s *Service) ippJobs() ([]*job.Job, error) {
	var out []*job.Job
	cursor := ""
	for read := 0; read < scanLimit; {
		js, next, err := s.o.Store.List(store.Filter{Kind: job.KindFax, Cursor: cursor, Limit: 500})
		if err != nil {
			return nil, fmt.Errorf("ipp: list jobs: %w", err)
		}
		read += len(js)
		for _, j := range js {
			if strings.HasPrefix(j.ClientRef, "ipp-") {
				if !j.Status.Terminal() {
					if fresh, err := s.o.Jobs.Get(j.ID); err == nil {
						j = fresh
					}
				}
				out = append(out, j)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return out, nil
}

// listed is one job of a Get-Jobs answer.
type listed struct {
	id    JobID
	attrs goipp.Attributes
	done  bool
}

func (s *Service) getJobs(rq *request) *response {
	ops := rq.msg.Operation
	which := firstString(ops, "which-jobs")
	switch which {
	case "":
		which = "not-completed"
	case "completed", "not-completed", "all":
	default:
		a, _ := find(ops, "which-jobs")
		return &response{status: goipp.StatusErrorAttributesOrValues, message: "which-jobs " + which + " is not supported", unsupported: goipp.Attributes{a}}
	}
	limit, err := firstInt(ops, "limit")
	if err != nil || limit < 1 {
		limit = 1000
	}
	all, e := s.listAll(rq)
	if e != nil {
		return e
	}
	want := requested(ops)
	if len(want) == 0 {
		want = map[string]bool{"job-id": true, "job-uri": true}
	}
	resp := &response{status: goipp.StatusOk}
	for _, l := range all {
		if (which == "completed" && !l.done) || (which == "not-completed" && l.done) {
			continue
		}
		if len(resp.jobs) == limit {
			break
		}
		resp.jobs = append(resp.jobs, filterAttrs(l.attrs, want, jobGroups))
	}
	return resp
}

// listAll describes every IPP job, pending and submitted, newest first.
func (s *Service) listAll(rq *request) ([]listed, *response) {
	js, err := s.ippJobs()
	if err != nil {
		return nil, s.internal("list jobs", err)
	}
	var out []listed
	s.mu.Lock()
	pend := make([]*pendingJob, 0, len(s.pending))
	for _, p := range s.pending {
		pend = append(pend, p)
	}
	metas := make(map[JobID]jobMeta, len(s.names))
	for k, v := range s.names {
		metas[k] = v
	}
	s.mu.Unlock()
	for _, p := range pend {
		a := s.pendingAttrs(rq, p)
		out = append(out, listed{id: p.id, attrs: a, done: p.state != stateHeld})
	}
	for _, j := range js {
		n, err := strconv.Atoi(strings.TrimPrefix(j.ClientRef, "ipp-"))
		if err != nil || n < 1 {
			continue
		}
		id := JobID(n)
		out = append(out, listed{id: id, attrs: s.faxJobAttrs(rq, id, j, metas[id]), done: j.Status.Terminal()})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id > out[b].id })
	return out, nil
}

// activeCount counts the IPP jobs not completed: those waiting for
// documents and the submitted ones this run knows that have not ended.
func (s *Service) activeCount() int {
	s.mu.Lock()
	n := 0
	var ids []string
	for _, p := range s.pending {
		if p.state == stateHeld {
			n++
		}
	}
	var keys []JobID
	for k, m := range s.names {
		if !m.ended {
			ids, keys = append(ids, m.faxID), append(keys, k)
		}
	}
	s.mu.Unlock()
	for i, id := range ids {
		j, err := s.o.Jobs.Get(id)
		switch {
		case err == nil && !j.Status.Terminal():
			n++
		case err == nil:
			s.mu.Lock()
			if m, ok := s.names[keys[i]]; ok {
				m.ended = true
				s.names[keys[i]] = m
			}
			s.mu.Unlock()
		}
	}
	return n
}
