package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// faxNumber is a number a fax may be sent to (as the API checks it).
var faxNumber = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

// SelfTest configures the loopback self-test (POST /v1/selftest, the
// panel's Self-test menu item).
type SelfTest struct {
	// OnBoot runs the self-test once after the box starts (once its
	// Asterisk answers); off by default.
	OnBoot bool `json:"on_boot"`
}

// Qualify configures trunk qualification (POST
// /v1/trunks/{name}/qualify, faxbox qualify): the number a test fax goes
// to, for every trunk (Number) or per trunk name (Trunks); a request may
// name another.
type Qualify struct {
	Number string            `json:"number"`
	Trunks map[string]string `json:"trunks"`
}

// NumberFor returns the qualification number of trunk ("" when none is
// configured).
func (q Qualify) NumberFor(trunk string) string {
	if n := q.Trunks[trunk]; n != "" {
		return n
	}
	return q.Number
}

func (q Qualify) check() error {
	var errs []error
	if q.Number != "" && !faxNumber.MatchString(q.Number) {
		errs = append(errs, fmt.Errorf("qualify.number %q: 3 to 20 digits, optionally a leading +", q.Number))
	}
	names := make([]string, 0, len(q.Trunks))
	for name := range q.Trunks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if n := q.Trunks[name]; !faxNumber.MatchString(n) {
			errs = append(errs, fmt.Errorf("qualify.trunks.%s %q: 3 to 20 digits, optionally a leading +", name, n))
		}
	}
	return errors.Join(errs...)
}
