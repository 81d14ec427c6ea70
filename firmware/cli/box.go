package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/client"
)

// runStatus shows the box: version, queue, lines, alarms, disk.
func runStatus(e *env, args []string) int {
	fs := e.flags()
	ops, code := e.parse(fs, args)
	if code != ExitOK {
		return code
	}
	if len(ops) > 0 {
		return e.usageErr("unexpected %q", ops[0])
	}
	st, err := e.c.Status(e.ctx)
	if err != nil {
		return e.fail("reading the box's status", err)
	}
	if e.json {
		e.printJSON(st)
		return ExitOK
	}
	q := st.Queue
	kv := newTable(e.Stdout)
	kv.row("box:", fmt.Sprintf("faxbox %s at %s, up %s", st.Version, e.c.Base, st.Uptime))
	kv.row("queue:", fmt.Sprintf("%d active: %d converting, %d waiting for a line, %d in a call, %d waiting to retry",
		q.Active, q.Converting, q.Waiting, q.InCall, q.RetryWait))
	kv.row("jobs stored:", fmt.Sprint(st.Jobs["stored"]))
	disk := fmt.Sprintf("%s free, queue database %s", bytesText(int64(st.Disk.FreeBytes)), bytesText(st.Disk.DBBytes))
	if st.Disk.Low {
		disk += " (LOW: new faxes are refused)"
	}
	kv.row("disk:", disk)
	if t := st.Trunk(); t != "" {
		kv.row("trunk:", t)
	}
	alarms := st.Alarms()
	if len(alarms) == 0 {
		alarms = []string{"none"}
	}
	kv.row("alarms:", strings.Join(alarms, "; "))
	kv.flush()
	fmt.Fprintln(e.Stdout)
	tw := newTable(e.Stdout, "LINE", "STATE", "JOB", "TO", "PAGE")
	for _, l := range st.Lines {
		state := string(l.State)
		if !l.Healthy {
			state += " (down)"
		}
		if l.Busy && l.State != "busied_out" {
			state += " (made busy)"
		}
		page := "-"
		if l.Pages > 0 {
			page = fmt.Sprintf("%d/%d", l.Page, l.Pages)
		}
		tw.row(l.ID().String(), state, dash(l.JobID), dash(l.To), page)
	}
	tw.flush()
	return ExitOK
}

// bytesText writes a byte count for people (1.5 GB).
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}

// inboxColumns are the columns inbox shows: a header and the fields that
// may hold it, first found wins. The received fax records are the box's
// (GET /v1/inbox); a field a box does not send shows as "-".
var inboxColumns = []struct {
	head   string
	fields []string
}{
	{"ID", []string{"id"}},
	{"RECEIVED", []string{"received_at", "created_at", "started_at"}},
	{"FROM", []string{"caller_id", "from", "remote_station_id"}},
	{"TO", []string{"did", "to", "port"}},
	{"PAGES", []string{"pages"}},
	{"STATUS", []string{"status", "result"}},
}

// runInbox lists received faxes (GET /v1/inbox), newest first.
func runInbox(e *env, args []string) int {
	fs := e.flags()
	limit := fs.Int("limit", 50, "at most this many received faxes")
	cursor := fs.String("cursor", "", "go on after a previous -json listing's next_cursor")
	ops, code := e.parse(fs, args)
	if code != ExitOK {
		return code
	}
	if len(ops) > 0 {
		return e.usageErr("unexpected %q", ops[0])
	}
	p, err := e.c.Inbox(e.ctx, *limit, *cursor)
	if errors.Is(err, client.ErrNotSupported) {
		var ae *client.APIError
		errors.As(err, &ae)
		fmt.Fprintf(e.Stderr, "faxbox inbox: this box does not list received faxes: GET /v1/inbox answered %v\n", ae)
		return ExitUnavailable
	}
	if err != nil {
		return e.fail("reading the inbox", err)
	}
	if e.json {
		e.printJSON(p)
		return ExitOK
	}
	heads := make([]string, len(inboxColumns))
	for i, c := range inboxColumns {
		heads[i] = c.head
	}
	tw := newTable(e.Stdout, heads...)
	for _, item := range p.Items {
		cells := make([]string, len(inboxColumns))
		for i, c := range inboxColumns {
			cells[i] = field(item, c.fields)
		}
		tw.row(cells...)
	}
	tw.flush()
	if len(p.Items) == 0 {
		fmt.Fprintln(e.Stderr, "(no received faxes)")
	}
	if p.NextCursor != "" {
		fmt.Fprintf(e.Stderr, "(more: faxbox inbox -cursor %s)\n", p.NextCursor)
	}
	return ExitOK
}

// field returns the first of names item has, as text ("-" for none).
func field(item map[string]any, names []string) string {
	for _, n := range names {
		v, ok := item[n]
		if !ok || v == nil || v == "" {
			continue
		}
		if s, ok := v.(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return stamp(t)
			}
			return s
		}
		return fmt.Sprint(v)
	}
	return "-"
}
