// Package destctl holds the destination controls: rules, matched on the
// number a job goes to, that set how the box treats that destination — how
// many calls it may have at once, whether several ready jobs go in one call,
// retries, calling windows, T.38/ECM/rate, or that it is refused outright
// (like HylaFAX's DestControls).
//
// The rules are the config's `destinations` list; the first rule that
// matches a number wins. A rule matches by `prefix` (digits, optionally with
// a leading +: the number starts with it) or by `regex` (the whole number
// must match: the pattern is compiled as ^(?:pattern)$). Numbers are matched
// as submitted, without normalisation: "+4930…" and "004930…" are different
// numbers to a rule.
//
// Compile validates the rules strictly and returns Controls, whose Match is
// safe for concurrent use and cheap enough to call for every ready job.
package destctl

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/scheduler"
)

// Limits on what a rule may ask for.
const (
	// MaxConcurrentLimit is the highest max_concurrent a rule may set.
	MaxConcurrentLimit = 64
	// MaxBatchLimit is the highest max_batch a rule may set.
	MaxBatchLimit = 50
	// MaxReasonLen bounds a reject reason (it is shown to API clients).
	MaxReasonLen = 200
)

// Rates are the fax signalling rates a rule's max_rate may name (bit/s).
var Rates = []int{2400, 4800, 7200, 9600, 12000, 14400}

// Modes are the values of a rule's t38 and ecm, as for a job's: "auto",
// "on" or "off" ("" leaves the job's own setting).
var Modes = []string{"auto", "on", "off"}

// Rule is one entry of the config's destinations list. Exactly one of
// Prefix and Regex is set. A field left out (zero) leaves that setting at
// its default (see Control).
type Rule struct {
	// Prefix matches numbers starting with it: digits, optionally with a
	// leading + ("+" alone: every number written with a +).
	Prefix string `json:"prefix,omitempty"`
	// Regex matches numbers it matches as a whole (RE2 syntax, anchored).
	Regex string `json:"regex,omitempty"`

	// MaxConcurrent: calls to one matching number at once (default 1: a fax
	// machine has one line; a fax server behind one number may take more).
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// MaxBatch: ready jobs to one number sent in one call (default 1: no
	// batching).
	MaxBatch int `json:"max_batch,omitempty"`
	// BatchWait: how long a ready job may wait for others to the same
	// number to join its batch (default 0: it goes at once).
	BatchWait job.Duration `json:"batch_wait,omitempty"`
	// MaxAttempts caps the dials of a job to a matching number: the job's
	// own max_attempts or this, whichever is lower (0: no cap).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// RetryWaits: the wait before the next attempt after an attempt that
	// failed with the code (a retryable failure code such as "line.busy");
	// codes left out, or given 0, use the job's retry interval.
	RetryWaits map[failure.Code]job.Duration `json:"retry_waits,omitempty"`
	// Windows: daily calling windows ("08:00-20:00", local time), as for
	// line groups; empty: any time.
	Windows []string `json:"windows,omitempty"`
	// T38, ECM: "auto", "on" or "off" (Modes); empty: the job's own.
	T38 string `json:"t38,omitempty"`
	ECM string `json:"ecm,omitempty"`
	// MaxRate: the highest signalling rate (one of Rates); 0: no limit.
	MaxRate int `json:"max_rate,omitempty"`
	// Reject: numbers matching the rule are refused, with this reason. A
	// reject rule sets nothing else.
	Reject string `json:"reject,omitempty"`
}

// pattern names the rule in messages: `prefix "0049"` or `regex "0049.*"`.
func (r Rule) pattern() string {
	if r.Regex != "" {
		return fmt.Sprintf("regex %q", r.Regex)
	}
	return fmt.Sprintf("prefix %q", r.Prefix)
}

// Control is the effective setting for one number: its rule's values with
// the defaults filled in. Its slices and map are shared between callers:
// read them, never change them.
type Control struct {
	// Rule is the index of the matching rule in the destinations list, -1
	// when none matched (all defaults).
	Rule int
	// Pattern describes the matching rule (`prefix "107"`), "" when none.
	Pattern string

	MaxConcurrent int           // at least 1
	MaxBatch      int           // at least 1 (1: no batching)
	BatchWait     time.Duration // 0: no waiting for a batch
	MaxAttempts   int           // 0: the job's own max_attempts
	RetryWaits    map[failure.Code]time.Duration
	Windows       []scheduler.Window // none: any time
	T38, ECM      string             // "": the job's own
	MaxRate       int                // 0: no limit
	// Reject is the reason numbers matching the rule are refused; "" when
	// they are not. A refused job ends with failure.LineRejectedDestination.
	Reject string
}

// RetryWait returns the wait the matched rule sets after an attempt that
// failed with code, or false when it sets none (use the job's interval).
func (c Control) RetryWait(code failure.Code) (time.Duration, bool) {
	d, ok := c.RetryWaits[code]
	return d, ok
}

// defaults is the Control of a number no rule matches.
var defaults = Control{Rule: -1, MaxConcurrent: 1, MaxBatch: 1}

var (
	rePrefix = regexp.MustCompile(`^\+?[0-9]*$`) // non-empty: checked apart
	// retryable lists the codes retry_waits may name, for messages.
	retryable = retryableCodes()
)

func retryableCodes() string {
	var cs []string
	for _, c := range failure.All() {
		if failure.Lookup(c).Retryable {
			cs = append(cs, string(c))
		}
	}
	slices.Sort(cs)
	return strings.Join(cs, ", ")
}

// Compile checks rules and returns them ready for matching. Every problem is
// reported, each naming its rule by index and pattern
// (`destinations[2] (regex "0049(")`). Compile(nil) gives Controls under
// which every number gets the defaults.
func Compile(rules []Rule) (*Controls, error) {
	c := &Controls{prefixes: map[string]int{}}
	var errs []error
	for i, r := range rules {
		ctl, re, err := compileRule(i, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("destctl: destinations[%d] (%s): %w", i, r.pattern(), err))
			continue
		}
		c.add(i, r.Prefix, re, ctl)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// compileRule validates one rule and returns its Control and, for a regex
// rule, the compiled pattern.
func compileRule(i int, r Rule) (Control, *regexp.Regexp, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var re *regexp.Regexp
	switch {
	case (r.Prefix == "") == (r.Regex == ""):
		bad("set exactly one of prefix and regex")
	case r.Regex != "":
		var err error
		if re, err = regexp.Compile(`^(?:` + r.Regex + `)$`); err != nil {
			bad("bad regex: %w", err)
		}
	case !rePrefix.MatchString(r.Prefix):
		bad("prefix: digits only, optionally with a leading +")
	}
	ctl := defaults
	ctl.Rule, ctl.Pattern = i, r.pattern()
	checkCounts(r, &ctl, bad)
	checkModes(r, &ctl, bad)
	checkRetryWaits(r, &ctl, bad)
	for _, s := range r.Windows {
		w, err := scheduler.ParseWindow(s)
		if err != nil {
			bad("windows: %w", err)
		}
		ctl.Windows = append(ctl.Windows, w)
	}
	checkReject(r, &ctl, bad)
	return ctl, re, errors.Join(errs...)
}

// checkCounts validates the numeric settings into ctl.
func checkCounts(r Rule, ctl *Control, bad func(string, ...any)) {
	switch {
	case r.MaxConcurrent < 0 || r.MaxConcurrent > MaxConcurrentLimit:
		bad("max_concurrent %d: 1 to %d", r.MaxConcurrent, MaxConcurrentLimit)
	case r.MaxConcurrent > 0:
		ctl.MaxConcurrent = r.MaxConcurrent
	}
	switch {
	case r.MaxBatch < 0 || r.MaxBatch > MaxBatchLimit:
		bad("max_batch %d: 1 to %d", r.MaxBatch, MaxBatchLimit)
	case r.MaxBatch > 0:
		ctl.MaxBatch = r.MaxBatch
	}
	if r.BatchWait < 0 {
		bad("batch_wait %s: negative", r.BatchWait.D())
	}
	ctl.BatchWait = max(r.BatchWait.D(), 0)
	if r.MaxAttempts < 0 {
		bad("max_attempts %d: negative", r.MaxAttempts)
	}
	ctl.MaxAttempts = max(r.MaxAttempts, 0)
}

// checkModes validates t38, ecm and max_rate into ctl.
func checkModes(r Rule, ctl *Control, bad func(string, ...any)) {
	for _, m := range []struct {
		key, v string
		dst    *string
	}{{"t38", r.T38, &ctl.T38}, {"ecm", r.ECM, &ctl.ECM}} {
		if m.v != "" && !slices.Contains(Modes, m.v) {
			bad("%s %q: auto, on or off", m.key, m.v)
		}
		*m.dst = m.v
	}
	if r.MaxRate != 0 && !slices.Contains(Rates, r.MaxRate) {
		bad("max_rate %d: one of 2400, 4800, 7200, 9600, 12000, 14400", r.MaxRate)
	}
	ctl.MaxRate = r.MaxRate
}

// checkRetryWaits validates retry_waits into ctl: retryable codes only,
// no negative waits; zero waits are dropped (the job's interval applies).
func checkRetryWaits(r Rule, ctl *Control, bad func(string, ...any)) {
	keys := make([]failure.Code, 0, len(r.RetryWaits))
	for code := range r.RetryWaits {
		keys = append(keys, code)
	}
	slices.Sort(keys) // messages in a stable order
	for _, code := range keys {
		d := r.RetryWaits[code]
		switch {
		case !failure.Known(code):
			bad("retry_waits: unknown failure code %q (retryable codes: %s)", code, retryable)
		case !failure.Lookup(code).Retryable:
			bad("retry_waits: %q is never retried (retryable codes: %s)", code, retryable)
		case d < 0:
			bad("retry_waits[%q] %s: negative", code, d.D())
		case d > 0:
			if ctl.RetryWaits == nil {
				ctl.RetryWaits = map[failure.Code]time.Duration{}
			}
			ctl.RetryWaits[code] = d.D()
		}
	}
}

// checkReject validates the reject reason into ctl: printable, at most
// MaxReasonLen bytes, on a rule that sets nothing else.
func checkReject(r Rule, ctl *Control, bad func(string, ...any)) {
	if r.Reject == "" {
		return
	}
	if strings.TrimSpace(r.Reject) == "" || len(r.Reject) > MaxReasonLen ||
		strings.IndexFunc(r.Reject, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0 {
		bad("reject: a reason of printable text, at most %d bytes", MaxReasonLen)
	}
	if r.MaxConcurrent != 0 || r.MaxBatch != 0 || r.BatchWait != 0 || r.MaxAttempts != 0 || len(r.RetryWaits) != 0 ||
		len(r.Windows) != 0 || r.T38 != "" || r.ECM != "" || r.MaxRate != 0 {
		bad("a reject rule sets nothing but its pattern and reason")
	}
	ctl.Reject = r.Reject
}
