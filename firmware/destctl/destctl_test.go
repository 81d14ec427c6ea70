package destctl

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/scheduler"
)

// compile reads rules as the config file spells them and compiles them.
func compile(t *testing.T, js string) (*Controls, error) {
	t.Helper()
	var rules []Rule
	if err := json.Unmarshal([]byte(js), &rules); err != nil {
		t.Fatalf("rules %s: %v", js, err)
	}
	return Compile(rules)
}

func mustCompile(t *testing.T, js string) *Controls {
	t.Helper()
	c, err := compile(t, js)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMatchFirstRuleWins: rules are tried in order, prefix and regex alike;
// the first that matches sets everything, defaults fill what it leaves out.
func TestMatchFirstRuleWins(t *testing.T) {
	c := mustCompile(t, `[
		{"regex": "0301234567", "reject": "known junk fax"},
		{"prefix": "030", "max_concurrent": 4, "max_batch": 10, "batch_wait": "30s"},
		{"prefix": "0301", "max_concurrent": 9},
		{"regex": "0[1-9][0-9]*99", "max_rate": 9600, "ecm": "off", "t38": "off"},
		{"prefix": "+", "windows": ["08:00-20:00"], "max_attempts": 2, "retry_waits": {"line.busy": "2m", "line.no_answer": "0s"}},
		{"regex": ".*", "max_concurrent": 2}
	]`)
	if c.Len() != 6 {
		t.Fatalf("Len %d", c.Len())
	}
	for _, tc := range []struct {
		number string
		rule   int
	}{
		{"0301234567", 0},
		{"03012345678", 1}, // a regex matches the whole number only
		{"0301999", 1},     // rule 1's prefix comes before rule 2's longer one
		{"0401999", 3},
		{"+4930123", 4},
		{"0401234", 5},
		{"100", 5},
	} {
		if got := c.Match(tc.number); got.Rule != tc.rule {
			t.Errorf("Match(%s) = rule %d (%s), want %d", tc.number, got.Rule, got.Pattern, tc.rule)
		}
	}
	got := c.Match("0309")
	want := Control{Rule: 1, Pattern: `prefix "030"`, MaxConcurrent: 4, MaxBatch: 10, BatchWait: 30 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rule 1: %+v, want %+v", got, want)
	}
	got = c.Match("0401999")
	if got.MaxConcurrent != 1 || got.MaxBatch != 1 || got.MaxRate != 9600 || got.ECM != "off" || got.T38 != "off" {
		t.Errorf("rule 3 with defaults: %+v", got)
	}
	got = c.Match("+4930")
	if w, ok := got.RetryWait(failure.LineBusy); !ok || w != 2*time.Minute {
		t.Errorf("retry wait after busy: %s %v", w, ok)
	}
	if _, ok := got.RetryWait(failure.LineNoAnswer); ok {
		t.Error("a 0s retry wait should leave the job's interval")
	}
	if got.MaxAttempts != 2 || !reflect.DeepEqual(got.Windows, []scheduler.Window{{From: 8 * time.Hour, To: 20 * time.Hour}}) {
		t.Errorf("rule 4: %+v", got)
	}
	if r, ok := c.Reject("0301234567"); !ok || r != "known junk fax" {
		t.Errorf("Reject: %q %v", r, ok)
	}
	if r, ok := c.Reject("0301234568"); ok || r != "" {
		t.Errorf("Reject of an accepted number: %q %v", r, ok)
	}
}

// TestMatchDefaults: no rule, an empty list and nil Controls all give
// max_concurrent 1 and no batching.
func TestMatchDefaults(t *testing.T) {
	want := Control{Rule: -1, MaxConcurrent: 1, MaxBatch: 1}
	empty, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	some := mustCompile(t, `[{"prefix": "0049", "max_concurrent": 3}, {"regex": "1[0-9]{2}", "max_batch": 5}]`)
	var none *Controls
	for name, c := range map[string]*Controls{"empty": empty, "nil": none, "no match": some} {
		if got := c.Match("0301234"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
		if _, ok := c.Reject("0301234"); ok {
			t.Errorf("%s: rejected", name)
		}
	}
	if some.Match("1000").Rule != -1 || some.Match("004").Rule != -1 {
		t.Error("a regex matched part of a number, or a prefix matched a shorter number")
	}
}

// TestCompileErrors: every bad rule is reported, named by index and
// pattern, with what is wrong.
func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want []string
	}{
		{`{"regex": "03(0"}`, []string{`destinations[1] (regex "03(0")`, "bad regex", "missing closing )"}},
		{`{}`, []string{"destinations[1]", "exactly one of prefix and regex"}},
		{`{"prefix": "0", "regex": "0"}`, []string{"exactly one of prefix and regex"}},
		{`{"prefix": "0x1"}`, []string{`prefix "0x1"`, "digits only"}},
		{`{"prefix": "0", "max_concurrent": 65}`, []string{"max_concurrent 65: 1 to 64"}},
		{`{"prefix": "0", "max_concurrent": -1}`, []string{"max_concurrent -1"}},
		{`{"prefix": "0", "max_batch": 51}`, []string{"max_batch 51: 1 to 50"}},
		{`{"prefix": "0", "max_batch": -2}`, []string{"max_batch -2"}},
		{`{"prefix": "0", "batch_wait": "-1s"}`, []string{"batch_wait -1s: negative"}},
		{`{"prefix": "0", "max_attempts": -1}`, []string{"max_attempts -1: negative"}},
		{`{"prefix": "0", "retry_waits": {"line.bussy": "1m"}}`, []string{`unknown failure code "line.bussy"`, "line.busy"}},
		{`{"prefix": "0", "retry_waits": {"line.invalid_number": "1m"}}`, []string{`"line.invalid_number" is never retried`}},
		{`{"prefix": "0", "retry_waits": {"line.busy": "-1m"}}`, []string{`retry_waits["line.busy"] -1m0s: negative`}},
		{`{"prefix": "0", "windows": ["8-20"]}`, []string{"windows", `"8-20"`}},
		{`{"prefix": "0", "t38": "yes"}`, []string{`t38 "yes": auto, on or off`}},
		{`{"prefix": "0", "ecm": "true"}`, []string{`ecm "true"`}},
		{`{"prefix": "0", "max_rate": 9000}`, []string{"max_rate 9000: one of 2400"}},
		{`{"prefix": "0", "reject": "no", "max_concurrent": 2}`, []string{"a reject rule sets nothing but"}},
		{`{"prefix": "0", "reject": "line\nbreak"}`, []string{"reject: a reason of printable text"}},
		{`{"prefix": "0", "reject": "` + strings.Repeat("x", MaxReasonLen+1) + `"}`, []string{"at most 200 bytes"}},
	} {
		_, err := compile(t, `[{"prefix": "0049"}, `+tc.rule+`]`)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v does not say %s", tc.rule, err, w)
			}
		}
	}
	// Every problem at once, each with its rule.
	_, err := compile(t, `[{"prefix": "a"}, {"prefix": "0"}, {"regex": "("}]`)
	if err == nil || !strings.Contains(err.Error(), "destinations[0]") || !strings.Contains(err.Error(), "destinations[2]") || strings.Contains(err.Error(), "destinations[1]") {
		t.Errorf("several bad rules: %v", err)
	}
	// The limits themselves are accepted.
	mustCompile(t, `[{"prefix": "0", "max_concurrent": 64, "max_batch": 50, "max_rate": 2400, "t38": "auto", "ecm": "on", "retry_waits": {"fax.training": "10m"}}]`)
}

// TestMatchReturnsCopies: a caller changing the Control it got does not
// change what the next caller gets.
func TestMatchReturnsCopies(t *testing.T) {
	c := mustCompile(t, `[{"prefix": "1", "max_concurrent": 4}]`)
	a := c.Match("100")
	a.MaxConcurrent = 99
	if c.Match("100").MaxConcurrent != 4 {
		t.Fatal("Match returned shared state")
	}
}

// benchRules makes n rules, alternating prefixes and regexes, none of which
// matches "0301234567" but the last.
func benchRules(n int) []Rule {
	rules := make([]Rule, 0, n)
	for i := 0; i < n-1; i++ {
		if i%2 == 0 {
			rules = append(rules, Rule{Prefix: fmt.Sprintf("09%03d", i), MaxConcurrent: 2})
		} else {
			rules = append(rules, Rule{Regex: fmt.Sprintf("08%03d[0-9]*", i), MaxBatch: 3})
		}
	}
	return append(rules, Rule{Regex: "0[1-9][0-9]{8}", MaxConcurrent: 4})
}

// BenchmarkMatch: 100 rules (50 prefixes, 50 regexes), the number matching
// only the last, the scheduler's worst case.
func BenchmarkMatch(b *testing.B) {
	c, err := Compile(benchRules(100))
	if err != nil {
		b.Fatal(err)
	}
	if got := c.Match("0301234567"); got.Rule != 99 {
		b.Fatalf("matched rule %d", got.Rule)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Match("0301234567")
	}
}

// TestMatchCost keeps Match cheap with 100 rules (the scheduler calls it
// for every ready job): at least 5 times faster than trying every rule's
// expression in order, measured in the same run (so the race detector or a
// busy machine slow both alike).
func TestMatchCost(t *testing.T) {
	rules := benchRules(100)
	c, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	naive := make([]*regexp.Regexp, len(rules))
	for i, r := range rules {
		if r.Prefix != "" {
			naive[i] = regexp.MustCompile("^" + regexp.QuoteMeta(r.Prefix))
		} else {
			naive[i] = regexp.MustCompile("^(?:" + r.Regex + ")$")
		}
	}
	const number = "0301234567"
	indexed := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			c.Match(number)
		}
	})
	scan := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			for _, re := range naive {
				if re.MatchString(number) {
					break
				}
			}
		}
	})
	if indexed.NsPerOp()*5 > scan.NsPerOp() {
		t.Errorf("Match with 100 rules: %d ns a call; trying every rule: %d ns", indexed.NsPerOp(), scan.NsPerOp())
	}
	t.Logf("Match %d ns, every rule in turn %d ns", indexed.NsPerOp(), scan.NsPerOp())
}
