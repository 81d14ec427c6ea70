package services

import (
	"strings"

	"github.com/faxbox/faxbox/firmware/config"
)

// didPatterns turns the inbox's dialled-number ranges into the extensions
// of the receive context: an exact number as itself, a range as the fewest
// Asterisk patterns that match exactly its numbers ("500-599" → "_5XX",
// "500-519" → "_5[0-1]X").
func didPatterns(rs []config.DIDRange) []string {
	var out []string
	for _, r := range rs {
		for _, p := range rangePatterns(r.From, r.To) {
			if strings.ContainsAny(p, "X[") {
				p = "_" + p
			}
			out = append(out, p)
		}
	}
	return out
}

// rangePatterns covers the numbers from lo to hi (equal length, lo <= hi)
// with patterns of digits, X and [a-b] classes (no leading underscore).
func rangePatterns(lo, hi string) []string {
	if lo == hi {
		return []string{lo}
	}
	i := 0
	for lo[i] == hi[i] {
		i++
	}
	prefix, rest := lo[:i], len(lo)-i-1
	restLo, restHi := lo[i+1:], hi[i+1:]
	from, to := lo[i], hi[i]
	var out []string
	if strings.Trim(restLo, "0") != "" {
		// lo's tail does not start a full block: lo..d999 first.
		for _, p := range rangePatterns(restLo, strings.Repeat("9", rest)) {
			out = append(out, prefix+string(from)+p)
		}
		from++
	}
	var last []string
	if strings.Trim(restHi, "9") != "" {
		for _, p := range rangePatterns(strings.Repeat("0", rest), restHi) {
			last = append(last, prefix+string(to)+p)
		}
		to--
	}
	if from <= to {
		class := string(from)
		switch {
		case from == '0' && to == '9':
			class = "X"
		case from < to:
			class = "[" + string(from) + "-" + string(to) + "]"
		}
		out = append(out, prefix+class+strings.Repeat("X", rest))
	}
	return append(out, last...)
}
