package destctl

import (
	"regexp"
	"slices"
	"strings"
)

// Controls are compiled destination rules (see Compile). They never change
// after Compile, so Match and Reject are safe for concurrent use. A nil
// *Controls gives every number the defaults.
type Controls struct {
	rules []Control // by rule index
	// prefixes maps each prefix to the lowest index of a rule with it;
	// lengths are the distinct prefix lengths, ascending.
	prefixes map[string]int
	lengths  []int
	regexes  []regexRule // in rule order
}

// regexRule is a compiled regex rule; lit is a literal every match starts
// with, checked before the expression runs.
type regexRule struct {
	index int
	lit   string
	re    *regexp.Regexp
}

// add appends rule i (its prefix, or its compiled regex when re is not nil).
func (c *Controls) add(i int, prefix string, re *regexp.Regexp, ctl Control) {
	c.rules = append(c.rules, ctl)
	if re != nil {
		lit, _ := re.LiteralPrefix()
		c.regexes = append(c.regexes, regexRule{index: i, lit: lit, re: re})
		return
	}
	if _, ok := c.prefixes[prefix]; !ok {
		c.prefixes[prefix] = i
	}
	if n := len(prefix); !slices.Contains(c.lengths, n) {
		c.lengths = append(c.lengths, n)
		slices.Sort(c.lengths)
	}
}

// Len returns the number of rules.
func (c *Controls) Len() int {
	if c == nil {
		return 0
	}
	return len(c.rules)
}

// Match returns the settings for number: those of the first rule that
// matches it, defaults filled in, or the defaults alone (Rule -1:
// max_concurrent 1, max_batch 1, nothing else set) when none does. It
// costs one map lookup per distinct prefix length plus the regex rules
// ordered before the first matching prefix rule whose literal start fits.
func (c *Controls) Match(number string) Control {
	if c == nil {
		return defaults
	}
	best := -1
	for _, n := range c.lengths {
		if n > len(number) {
			break
		}
		if i, ok := c.prefixes[number[:n]]; ok && (best < 0 || i < best) {
			best = i
		}
	}
	for _, r := range c.regexes {
		if best >= 0 && r.index > best {
			break
		}
		if strings.HasPrefix(number, r.lit) && r.re.MatchString(number) {
			best = r.index
			break
		}
	}
	if best < 0 {
		return defaults
	}
	return c.rules[best]
}

// Reject reports whether number is refused by its rule, and the rule's
// reason. A refused job ends with failure.LineRejectedDestination.
func (c *Controls) Reject(number string) (reason string, rejected bool) {
	ctl := c.Match(number)
	return ctl.Reject, ctl.Reject != ""
}
