package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/selftest"
)

// runQualify qualifies a SIP trunk: the box sends a test fax through it
// (POST /v1/trunks/{name}/qualify), the command waits for the run to end
// and prints the path's score and the recommended UDPTL settings. Exit 0:
// the fax was delivered and scored; 2: it failed (the cause is printed);
// 75: -wait-timeout passed first (the run goes on).
func runQualify(e *env, args []string) int {
	fs := e.flags()
	trunk := fs.String("trunk", "trunk", "the SIP trunk's name (asterisk.trunk.name)")
	to := fs.String("to", "", "the number to fax (default: the box's qualify.number)")
	wait := fs.Duration("wait-timeout", 5*time.Minute, "stop waiting after this long (the run goes on)")
	ops, code := e.parse(fs, args)
	if code != ExitOK {
		return code
	}
	if len(ops) > 0 {
		return e.usageErr("unexpected %q", ops[0])
	}
	run, err := e.c.Qualify(e.ctx, *trunk, *to)
	if err != nil {
		return e.fail("qualifying trunk "+*trunk, err)
	}
	fmt.Fprintf(e.Stderr, "faxbox qualify: test fax to %s through trunk %s (job %s)…\n", run.To, run.Trunk, run.JobID)
	deadline := time.NewTimer(*wait)
	defer deadline.Stop()
	for run.Status == selftest.Running {
		select {
		case <-e.ctx.Done():
			fmt.Fprintln(e.Stderr, "faxbox qualify: stopped waiting; the qualification goes on (GET /v1/trunks/"+*trunk+"/qualify)")
			return ExitTempFail
		case <-deadline.C:
			fmt.Fprintf(e.Stderr, "faxbox qualify: not done after %s; the qualification goes on\n", *wait)
			return ExitTempFail
		case <-time.After(time.Second):
		}
		if run, err = e.c.Qualification(e.ctx, *trunk); err != nil {
			return e.fail("following the qualification", err)
		}
	}
	if e.json {
		e.printJSON(run)
	} else {
		printQualification(e, run)
	}
	if run.Status != selftest.Passed {
		return ExitFailed
	}
	return ExitOK
}

// printQualification writes the run for a person.
func printQualification(e *env, run *selftest.Run) {
	w := e.Stdout
	fmt.Fprintf(w, "trunk %s to %s: %s\n", run.Trunk, run.To, run.Status)
	if run.Error != nil {
		fmt.Fprintf(w, "  %s (%s)\n", run.Error.Message, run.Error.Code)
	}
	q := run.Qualification
	if q == nil {
		return
	}
	fmt.Fprintf(w, "score %d (%s)", q.Score, q.Grade)
	if q.Transport != "" {
		fmt.Fprintf(w, " over %s", q.Transport)
	}
	fmt.Fprintln(w)
	if q.Transport != "" {
		fmt.Fprintf(w, "  loss %.2f%% (recovered %.2f%%, unrecoverable %.2f%%), longest burst %d, redundancy depth seen %d\n",
			q.LossPct, q.RecoveredPct, q.UnrecoverablePct, q.LongestBurst, q.RedundancyDepth)
		fmt.Fprintf(w, "  largest datagram %d octets, jitter %.1f ms\n", q.LargestDatagram, q.JitterMS)
	}
	if r := q.Recommend; r.Transport != "" {
		var parts []string
		parts = append(parts, "transport "+r.Transport)
		if r.RedundancyDepth > 0 {
			parts = append(parts, fmt.Sprintf("redundancy depth %d (udptl.conf udptlfecentries)", r.RedundancyDepth))
		}
		if r.T38FaxMaxDatagram > 0 {
			parts = append(parts, fmt.Sprintf("T38FaxMaxDatagram %d (pjsip.conf t38_udptl_maxdatagram)", r.T38FaxMaxDatagram))
		}
		fmt.Fprintf(w, "recommended: %s\n", strings.Join(parts, ", "))
	}
	for _, f := range q.Findings {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}
