package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/client"
)

// sendOption is one of send's flags that carries a field of POST /v1/faxes;
// the flag is the field's name with '-' for '_'. Only flags given on the
// command line are sent: the box's defaults apply to the others, and the box
// checks every value (its error names the field).
type sendOption struct {
	flag, help string
	// check converts or checks the value on the command line (nil: sent
	// as given).
	check func(now time.Time, v string) (string, error)
}

// sendOptions are send's API fields, in usage order.
var sendOptions = []sendOption{
	{"max-attempts", "`N`: dials at most (the box's default: 3)", integer},
	{"retry-interval", "`DURATION` between attempts, like 5m, or seconds", nil},
	{"priority", "`N` from 0 to 9; 9 is urgent (sent also outside a line group's time windows)", integer},
	{"send-at", "`TIME`: send no earlier than this, RFC 3339 time (2026-12-24T09:00:00+01:00) or +DURATION (+30m)", when},
	{"expire-at", "`TIME` to give up at (default: 24h after the send time): RFC 3339 or +DURATION", when},
	{"resolution", "standard, fine or superfine", nil},
	{"page-size", "a4, letter or legal", nil},
	{"header", "page `TEXT` at the top of each page; %station, %date, %n (page) and %N (pages) are filled in", nil},
	{"station-id", "the box's station id (TSI) for this fax", nil},
	{"ecm", "error correction mode: auto, on or off", nil},
	{"t38", "T.38: auto, on or off", nil},
	{"line-group", "the `GROUP` of lines to send on", nil},
	{"callback-url", "`URL` the box POSTs this fax's webhooks to", nil},
	{"client-ref", "your `REF`erence; sending the same reference and content again is one job", nil},
}

// field returns the API field name of a send flag.
func (o sendOption) field() string { return strings.ReplaceAll(o.flag, "-", "_") }

func integer(_ time.Time, v string) (string, error) {
	if _, err := strconv.Atoi(v); err != nil {
		return "", fmt.Errorf("%q is not a whole number", v)
	}
	return v, nil
}

// when reads an RFC 3339 time or +DURATION (from now) into RFC 3339.
func when(now time.Time, v string) (string, error) {
	if rest, ok := strings.CutPrefix(v, "+"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("%q: want +DURATION like +30m or +2h", v)
		}
		return now.Add(d).Format(time.RFC3339), nil
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		return "", fmt.Errorf("%q: want an RFC 3339 time like 2026-12-24T09:00:00+01:00, or +DURATION", v)
	}
	return v, nil
}

// sendArgs is send's parsed command line.
type sendArgs struct {
	fax         client.Fax
	wait        bool
	waitTimeout time.Duration
}

// parseSend reads send's command line. It returns ExitOK and the request,
// or the exit status to stop with.
func (e *env) parseSend(args []string, now time.Time) (sendArgs, int) {
	var a sendArgs
	fs := e.flags()
	to := fs.String("to", "", "the `NUMBER` to fax (required): 3 to 20 digits, optionally with a leading +; or a name in the box's directory (its one fax number)")
	fs.BoolVar(&a.wait, "wait", false, "follow the fax to its end, showing its progress (page n/m) on stderr; the exit status tells the outcome")
	fs.DurationVar(&a.waitTimeout, "wait-timeout", 0, "with -wait: stop waiting after this long (exit 75; the fax goes on); 0 waits until the end")
	vals := make(map[string]*string, len(sendOptions))
	for _, o := range sendOptions {
		vals[o.flag] = fs.String(o.flag, "", o.help)
	}
	files, code := e.parse(fs, args)
	if code != ExitOK {
		return a, code
	}
	if *to == "" {
		return a, e.usageErr("-to NUMBER is required")
	}
	if len(files) == 0 {
		return a, e.usageErr("name at least one file to send")
	}
	a.fax = client.Fax{To: *to, Fields: map[string]string{}, Files: files}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, o := range sendOptions {
		if !set[o.flag] {
			continue
		}
		v := *vals[o.flag]
		if o.check != nil {
			var err error
			if v, err = o.check(now, v); err != nil {
				return a, e.usageErr("-%s: %v", o.flag, err)
			}
		}
		a.fax.Fields[o.field()] = v
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err == nil && st.IsDir() {
			err = fmt.Errorf("%s is a directory", f)
		}
		if err != nil {
			fmt.Fprintf(e.Stderr, "faxbox send: cannot read %v\n", err)
			return a, ExitNoInput
		}
	}
	return a, ExitOK
}

// runSend submits a fax, prints its id (the whole job with -json) and, with
// -wait, follows it to its end.
func runSend(e *env, args []string) int {
	a, code := e.parseSend(args, time.Now())
	if code != ExitOK {
		return code
	}
	if a.fax.To, code = e.resolveTo(a.fax.To); code != ExitOK {
		return code
	}
	ctx := e.ctx
	var stream *client.Stream
	if a.wait {
		// Subscribe before submitting, so that no change of the job is
		// missed; without events, the job is polled.
		var err error
		if stream, err = e.c.Events(ctx, 0); err != nil {
			e.log.Warn("no event stream; following the fax by polling", "err", err)
			stream = nil
		}
	}
	j, existed, err := e.c.Submit(ctx, a.fax)
	if err != nil {
		if stream != nil {
			stream.Close()
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			fmt.Fprintf(e.Stderr, "faxbox send: %v\n", err)
			return ExitNoInput
		}
		return e.fail("sending the fax", err)
	}
	if existed {
		fmt.Fprintf(e.Stderr, "faxbox send: the box already had this fax (same -client-ref and content): job %s, %s\n", j.ID, j.Status)
	}
	if !a.wait {
		if e.json {
			e.printJSON(j)
		} else {
			fmt.Fprintln(e.Stdout, j.ID)
		}
		return ExitOK
	}
	if !e.json {
		fmt.Fprintln(e.Stdout, j.ID)
	}
	return e.follow(j, stream, a.waitTimeout)
}
