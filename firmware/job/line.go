package job

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrBadLine is returned by ParseLineID for text that is not a line id.
var ErrBadLine = errors.New("job: not a line id (group/n, n from 1 without leading zeros or sign)")

// MaxLinesPerGroup bounds a line's number within its group.
const MaxLinesPerGroup = 9999

// groupName is what may name a configured line group: a lower-case
// letter, then up to 31 lower-case letters, digits, '-' or '_'. Such a
// name may reach Asterisk's dialplan (a line's kept-result key).
var groupName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// ValidGroupName reports whether s may name a configured line group.
func ValidGroupName(s string) bool { return groupName.MatchString(s) }

// LineID names one line (channel) of a line group: Group and its 1-based
// number N. Its text form, "group/n", is what the API, the front panel and
// the job records show; String and ParseLineID are each other's inverse.
type LineID struct {
	Group string
	N     int // 1-based
}

// LineAt returns the id of the line with 0-based index idx in group.
func LineAt(group string, idx int) LineID { return LineID{Group: group, N: idx + 1} }

// Index returns the line's 0-based index within its group.
func (l LineID) Index() int { return l.N - 1 }

// String returns "group/n".
func (l LineID) String() string {
	if l.Group == "" && l.N == 0 {
		return ""
	}
	return l.Group + "/" + strconv.Itoa(l.N)
}

// IsZero reports whether l names no line.
func (l LineID) IsZero() bool { return l == LineID{} }

// ParseLineID reads "group/n". The group is 1 to 64 letters, digits, '-' or
// '_'; n is a decimal number from 1 to MaxLinesPerGroup written without a
// sign or leading zeros, so every line has exactly one text form.
func ParseLineID(s string) (LineID, error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return LineID{}, fmt.Errorf("%w: %q", ErrBadLine, s)
	}
	g, n := s[:i], s[i+1:]
	if !validGroup(g) || n == "" || n[0] == '0' || len(n) > 4 {
		return LineID{}, fmt.Errorf("%w: %q", ErrBadLine, s)
	}
	v := 0
	for _, c := range []byte(n) {
		if c < '0' || c > '9' {
			return LineID{}, fmt.Errorf("%w: %q", ErrBadLine, s)
		}
		v = v*10 + int(c-'0')
	}
	return LineID{Group: g, N: v}, nil
}

func validGroup(g string) bool {
	if g == "" || len(g) > 64 {
		return false
	}
	for _, c := range []byte(g) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// MarshalText writes "group/n" (empty for the zero id).
func (l LineID) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads "group/n"; empty text is the zero id.
func (l *LineID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*l = LineID{}
		return nil
	}
	v, err := ParseLineID(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
