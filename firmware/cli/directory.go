package cli

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/faxbox/faxbox/firmware/directory"
)

// reNumber is what send passes on as a number (the box checks it); a -to
// with anything else, such as a letter, is a name.
var reNumber = regexp.MustCompile(`^[+0-9 ()./-]*$`)

// resolveTo returns send's -to: a number as given, or the one fax number
// the box's directory (GET /v1/directory) has for a name. A name naming
// no fax number, or more than one (the candidates are listed), stops with
// ExitRefused.
func (e *env) resolveTo(to string) (string, int) {
	if reNumber.MatchString(to) {
		return to, ExitOK
	}
	found, err := e.c.Directory(e.ctx, to)
	if err != nil {
		return "", e.fail(fmt.Sprintf("looking up %q in the box's directory", to), err)
	}
	n, err := directory.Pick(to, found)
	var amb *directory.AmbiguousError
	switch {
	case errors.As(err, &amb):
		fmt.Fprintf(e.Stderr, "faxbox send: %q names more than one fax number; give -to one of them (or the whole name):\n", to)
		for _, c := range amb.Candidates {
			for _, f := range c.Faxes {
				fmt.Fprintf(e.Stderr, "  %-20s %s\n", f, c.Name)
			}
		}
		return "", ExitRefused
	case err != nil:
		fmt.Fprintf(e.Stderr, "faxbox send: no fax number in the box's directory for %q (%d entries found without one)\n", to, len(found))
		return "", ExitRefused
	}
	fmt.Fprintf(e.Stderr, "faxbox send: %s: fax number %s (from the box's directory)\n", to, n)
	return n, ExitOK
}
