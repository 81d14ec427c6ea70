package job

import (
	"strings"

	"github.com/oklog/ulid/v2"
)

// Id prefixes: a job's id starts with its kind's prefix and "_", then a ULID
// (time-ordered, so within one kind ids sort by creation time).
const (
	prefixFax     = "fx"
	prefixCall    = "cl"
	prefixAttempt = "at"
)

// IDPrefix returns the prefix ("fx_", "cl_") of the ids of kind's jobs, or
// "" for an unknown kind.
func IDPrefix(kind Kind) string {
	switch kind {
	case KindFax:
		return prefixFax + "_"
	case KindCall:
		return prefixCall + "_"
	}
	return ""
}

func newID(prefix string) string {
	return prefix + "_" + strings.ToLower(ulid.Make().String())
}

// NewFaxID returns a new fax job id.
func NewFaxID() string { return newID(prefixFax) }

// NewCallID returns a new call job id.
func NewCallID() string { return newID(prefixCall) }

// NewAttemptID returns a new attempt id.
func NewAttemptID() string { return newID(prefixAttempt) }
