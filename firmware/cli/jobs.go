package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/client"
	"github.com/faxbox/faxbox/firmware/job"
)

// activeStatuses and doneStatuses split the job states as faxstat -s (the
// send queue) and -d (done jobs) do.
var (
	activeStatuses = []job.Status{job.Queued, job.Converting, job.Ready, job.Dialing, job.Sending, job.RetryWait}
	doneStatuses   = []job.Status{job.Delivered, job.Failed, job.Cancelled}
)

// listing is list's answer with -json: the jobs and, when there are more
// than shown and one query made the page, the cursor to go on with.
type listing struct {
	Items      []*job.Job `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// runList lists fax jobs, newest first: all, the queue (-active), the done
// ones (-done) or one status.
func runList(e *env, args []string) int {
	fs := e.flags()
	active := fs.Bool("active", false, "only jobs not yet ended (queued, converting, ready, dialing, sending, retry_wait), like faxstat -s")
	done := fs.Bool("done", false, "only ended jobs (delivered, failed, cancelled), like faxstat -d")
	status := fs.String("status", "", "only jobs in this status")
	limit := fs.Int("limit", 50, "at most this many jobs (1 to 500)")
	since := fs.String("since", "", "only jobs created at or after this RFC 3339 time, or within +DURATION ago (+24h)")
	cursor := fs.String("cursor", "", "go on after a previous -json listing's next_cursor (not with -active or -done)")
	ops, code := e.parse(fs, args)
	if code != ExitOK {
		return code
	}
	if len(ops) > 0 {
		return e.usageErr("unexpected %q", ops[0])
	}
	var statuses []job.Status
	switch {
	case btoi(*active)+btoi(*done)+btoi(*status != "") > 1:
		return e.usageErr("-active, -done and -status exclude each other")
	case *active:
		statuses = activeStatuses
	case *done:
		statuses = doneStatuses
	case *status != "":
		if !job.Status(*status).Valid() {
			return e.usageErr("-status %q: one of %s", *status, strings.Join(statusNames(), ", "))
		}
		statuses = []job.Status{job.Status(*status)}
	}
	if *limit < 1 || *limit > 500 {
		return e.usageErr("-limit must be 1 to 500")
	}
	if *cursor != "" && len(statuses) > 1 {
		return e.usageErr("-cursor pages a listing of one status or of all jobs")
	}
	q := client.Query{Limit: *limit, Cursor: *cursor}
	if *since != "" {
		t, err := sinceTime(*since, time.Now())
		if err != nil {
			return e.usageErr("-since: %v", err)
		}
		q.Since = t
	}
	l, err := e.listJobs(q, statuses)
	if err != nil {
		return e.fail("listing the faxes", err)
	}
	if e.json {
		e.printJSON(l)
		return ExitOK
	}
	jobTable(e, l.Items)
	if l.NextCursor != "" {
		fmt.Fprintf(e.Stderr, "(more: faxbox list -cursor %s)\n", l.NextCursor)
	}
	return ExitOK
}

// listJobs queries each of statuses (all jobs when none) and merges the
// answers newest first (ids sort by creation), at most q.Limit.
func (e *env) listJobs(q client.Query, statuses []job.Status) (*listing, error) {
	if len(statuses) <= 1 {
		if len(statuses) == 1 {
			q.Status = statuses[0]
		}
		p, err := e.c.List(e.ctx, q)
		if err != nil {
			return nil, err
		}
		return &listing{Items: p.Items, NextCursor: p.NextCursor}, nil
	}
	l := &listing{Items: []*job.Job{}}
	for _, st := range statuses {
		q.Status = st
		p, err := e.c.List(e.ctx, q)
		if err != nil {
			return nil, err
		}
		l.Items = append(l.Items, p.Items...)
	}
	slices.SortFunc(l.Items, func(a, b *job.Job) int { return strings.Compare(b.ID, a.ID) })
	if len(l.Items) > q.Limit {
		l.Items = l.Items[:q.Limit]
	}
	return l, nil
}

// sinceTime reads an RFC 3339 time or +DURATION (that long before now).
func sinceTime(v string, now time.Time) (string, error) {
	if rest, ok := strings.CutPrefix(v, "+"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("%q: want +DURATION like +24h", v)
		}
		return now.Add(-d).Format(time.RFC3339), nil
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		return "", fmt.Errorf("%q: want an RFC 3339 time or +DURATION", v)
	}
	return v, nil
}

func statusNames() []string {
	var out []string
	for _, s := range append(slices.Clone(activeStatuses), doneStatuses...) {
		out = append(out, string(s))
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// jobTable writes jobs as a table: id, number, status, pages, calls, when,
// and the error or progress in plain words.
func jobTable(e *env, jobs []*job.Job) {
	tw := newTable(e.Stdout, "ID", "TO", "STATUS", "PAGES", "CALLS", "CREATED", "INFO")
	for _, j := range jobs {
		tw.row(j.ID, j.To, string(j.Status), fmt.Sprintf("%d/%d", j.PagesConfirmed, j.Pages),
			fmt.Sprintf("%d/%d", j.Dials-j.RetryBase, j.MaxAttempts), stamp(j.CreatedAt), jobInfo(j))
	}
	tw.flush()
	if len(jobs) == 0 {
		fmt.Fprintln(e.Stderr, "(no fax jobs)")
	}
}

// jobInfo is a job's error, or where a job that has not ended stands.
func jobInfo(j *job.Job) string {
	switch {
	case j.Error != nil:
		return errorText(j.Error)
	case j.Status == job.Delivered:
		return ""
	case !j.Status.Terminal():
		return progressText(j, nil)
	}
	return ""
}

// stamp writes a time in local time, the date left out for today.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.Local()
	if y, m, d := t.Date(); y == time.Now().Year() && m == time.Now().Month() && d == time.Now().Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// runShow prints one fax job with its attempts.
func runShow(e *env, args []string) int {
	fs := e.flags()
	ids, code := e.parse(fs, args)
	if code != ExitOK {
		return code
	}
	if len(ids) != 1 {
		return e.usageErr("name one fax job id")
	}
	j, err := e.c.Get(e.ctx, ids[0])
	if err != nil {
		return e.fail("reading fax "+ids[0], err)
	}
	if e.json {
		e.printJSON(j)
		return ExitOK
	}
	showJob(e, j)
	return ExitOK
}

// showJob writes a job's fields, then its attempts as a table.
func showJob(e *env, j *job.Job) {
	kv := newTable(e.Stdout)
	kv.row("id:", j.ID)
	kv.row("to:", j.To)
	kv.row("status:", string(j.Status))
	if !j.Status.Terminal() {
		kv.row("now:", progressText(j, nil))
	}
	if j.Error != nil {
		kv.row("error:", errorText(j.Error))
	}
	kv.row("pages:", fmt.Sprintf("%d confirmed of %d", j.PagesConfirmed, j.Pages))
	kv.row("calls:", fmt.Sprintf("%d (at most %d, every %s)", j.Dials, j.MaxAttempts, j.RetryInterval.D()))
	var files []string
	for _, f := range j.Files {
		files = append(files, fmt.Sprintf("%s (%s, %d bytes)", f.Name, f.Type, f.Size))
	}
	kv.row("files:", strings.Join(files, ", "))
	o := j.Options
	kv.row("options:", fmt.Sprintf("resolution %s, page size %s, ECM %s, T.38 %s, priority %d", o.Resolution, o.PageSize, o.ECM, o.T38, j.Priority))
	if j.ClientRef != "" {
		kv.row("client ref:", j.ClientRef)
	}
	kv.row("created:", j.CreatedAt.Local().Format(time.RFC3339))
	if j.SendAt != nil {
		kv.row("send at:", j.SendAt.Local().Format(time.RFC3339))
	}
	if j.CompletedAt != nil {
		kv.row("completed:", j.CompletedAt.Local().Format(time.RFC3339))
	} else {
		kv.row("expires:", j.ExpireAt.Local().Format(time.RFC3339))
	}
	kv.flush()
	if len(j.Attempts) == 0 {
		return
	}
	fmt.Fprintln(e.Stdout)
	tw := newTable(e.Stdout, "#", "LINE", "STARTED", "SECONDS", "SENT", "RESULT", "TRANSPORT", "RATE", "REMOTE", "ERROR")
	for _, a := range j.Attempts {
		secs := "-"
		if a.EndedAt != nil {
			secs = fmt.Sprintf("%.1f", a.EndedAt.Sub(a.StartedAt).Seconds())
		}
		cause := ""
		if a.Error != nil {
			cause = errorText(a.Error)
		}
		tw.row(fmt.Sprint(a.N), a.Line.String(), stamp(a.StartedAt), secs,
			attemptPages(a), string(a.Result),
			dash(a.Transport), dashInt(a.BitRate), dash(a.RemoteStationID), cause)
	}
	tw.flush()
}

// attemptPages is the pages an attempt sent, and the page it began at when
// it resumed a document.
func attemptPages(a job.Attempt) string {
	if a.FirstPage > 1 {
		return fmt.Sprintf("%d (from p.%d)", a.PagesSent, a.FirstPage)
	}
	return fmt.Sprint(a.PagesSent)
}

// runCancel cancels fax jobs; a job in a call is hung up and ends with the
// call's result.
func runCancel(e *env, args []string) int {
	return e.eachJob(args, "cancelling", func(id string) (*job.Job, string, error) {
		j, pending, err := e.c.Cancel(e.ctx, id)
		switch {
		case err != nil:
			return nil, "", err
		case pending:
			return j, fmt.Sprintf("%s: hanging up the call in progress; the fax ends with its result (%s)", j.ID, j.Status), nil
		}
		return j, fmt.Sprintf("%s: %s", j.ID, j.Status), nil
	})
}

// runRetry queues failed or cancelled fax jobs again.
func runRetry(e *env, args []string) int {
	return e.eachJob(args, "retrying", func(id string) (*job.Job, string, error) {
		j, err := e.c.Retry(e.ctx, id)
		if err != nil {
			return nil, "", err
		}
		return j, fmt.Sprintf("%s: retried, now %s (at most %s)", j.ID, j.Status, plural(j.MaxAttempts, "more call")), nil
	})
}

// eachJob runs do for each id on the command line, printing its outcome (the
// job with -json); the exit status is the first failure's (ExitOK when all
// worked).
func (e *env) eachJob(args []string, what string, do func(id string) (*job.Job, string, error)) int {
	fs := e.flags()
	ids, code := e.parse(fs, args)
	if code != ExitOK {
		return code
	}
	if len(ids) == 0 {
		return e.usageErr("name at least one fax job id")
	}
	status := ExitOK
	for _, id := range ids {
		j, msg, err := do(id)
		if err != nil {
			if c := e.fail(what+" "+id, err); status == ExitOK {
				status = c
			}
			continue
		}
		if e.json {
			e.printJSON(j)
			continue
		}
		fmt.Fprintln(e.Stdout, msg)
	}
	return status
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashInt(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
