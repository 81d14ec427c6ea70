package directory

import (
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/rules"
)

// Entry is one phone book entry (a user or any other entry with numbers).
type Entry struct {
	DN   string `json:"dn"`
	Name string `json:"name"`
	// Login is a user's login name (ldap.user_attribute).
	Login string `json:"login,omitempty"`
	// Phones and Faxes are its numbers, checked (see the package doc).
	Phones []string `json:"phones,omitempty"`
	Faxes  []string `json:"faxes,omitempty"`
}

// user is a directory user with the rights its groups grant.
type user struct {
	Entry
	tokens               []string
	send, call, callback bool
}

// snapshot is one checked copy of the directory.
type snapshot struct {
	at      time.Time
	users   []user
	book    []Entry
	callers map[string]bool // numbers of the callback group's members
	refused int
}

// nameAttrs are the attributes an entry's name is read from, first first.
var nameAttrs = []string{"displayName", "cn", "o"}

// builder checks a Raw into a snapshot, counting and logging refusals.
type builder struct {
	cfg  config.LDAP
	deny []string
	log  *slog.Logger
	s    *snapshot
	seen map[string]bool // refused values by DN, attribute and value
}

// build checks raw into a snapshot (cfg with its defaults).
func build(raw *Raw, cfg config.LDAP, deny []string, log *slog.Logger) *snapshot {
	b := &builder{cfg: cfg, deny: deny, log: log, s: &snapshot{callers: map[string]bool{}}, seen: map[string]bool{}}
	send := b.members(raw, cfg.SendGroup)
	call := b.members(raw, cfg.CallGroup)
	callback := b.members(raw, cfg.CallbackGroup)
	seen := map[string]bool{}
	for _, r := range raw.Users {
		e, ok := b.entry(r)
		if !ok {
			continue
		}
		login, ok := b.text(r, cfg.UserAttribute)
		if !ok || login == "" {
			b.refuse(r.DN, cfg.UserAttribute, login, "a user without a valid login name")
			continue
		}
		e.Login = login
		u := user{Entry: e, send: send.has(r.DN, login), call: call.has(r.DN, login), callback: callback.has(r.DN, login)}
		if cfg.TokenAttribute != "" {
			for _, t := range r.Get(cfg.TokenAttribute) {
				if validToken(t) {
					u.tokens = append(u.tokens, t)
				} else {
					b.refuse(r.DN, cfg.TokenAttribute, t, "a token must be 8 to 256 printable ASCII characters without spaces")
				}
			}
		}
		if u.callback {
			for _, n := range append(append([]string{}, e.Phones...), e.Faxes...) {
				b.s.callers[n] = true
			}
		}
		b.s.users = append(b.s.users, u)
		b.add(e, seen)
	}
	for _, r := range raw.Book {
		if e, ok := b.entry(r); ok {
			b.add(e, seen)
		}
	}
	return b.s
}

// add puts e into the phone book unless an entry of its DN is there, or
// it has no number.
func (b *builder) add(e Entry, seen map[string]bool) {
	k := canonDN(e.DN)
	if seen[k] || len(e.Phones)+len(e.Faxes) == 0 {
		return
	}
	seen[k] = true
	b.s.book = append(b.s.book, e)
}

// entry checks r's name and numbers; false when the entry is refused
// (its name is hostile or missing).
func (b *builder) entry(r Record) (Entry, bool) {
	e := Entry{DN: r.DN}
	if !cleanText(r.DN) {
		b.refuse("(unprintable DN)", "dn", r.DN, "a DN with control characters or ${")
		return e, false
	}
	for _, a := range nameAttrs {
		if len(r.Get(a)) == 0 {
			continue
		}
		name, ok := b.text(r, a)
		if !ok {
			return e, false
		}
		e.Name = name
		break
	}
	if e.Name == "" {
		b.refuse(r.DN, "cn", "", "an entry without a name")
		return e, false
	}
	fax := map[string]bool{}
	for _, a := range b.cfg.FaxAttributes {
		fax[lower(a)] = true
	}
	for _, a := range b.cfg.PhoneAttributes {
		for _, v := range r.Get(a) {
			n, why := b.number(v)
			switch {
			case why != "":
				b.refuse(r.DN, a, v, why)
			case fax[lower(a)]:
				e.Faxes = appendNew(e.Faxes, n)
			default:
				e.Phones = appendNew(e.Phones, n)
			}
		}
	}
	return e, true
}

// text returns the first value of attribute a of r, refusing a hostile one.
func (b *builder) text(r Record, a string) (string, bool) {
	vs := r.Get(a)
	if len(vs) == 0 {
		return "", true
	}
	v := strings.TrimSpace(vs[0])
	if !cleanText(v) || utf8.RuneCountInString(v) > 256 {
		b.refuse(r.DN, a, v, "control characters (CR, LF, …), ${ or over 256 characters")
		return "", false
	}
	return v, true
}

// number checks a number the way the box dials it; why says why not.
func (b *builder) number(v string) (n, why string) {
	if !cleanText(v) {
		return "", "a number with control characters or ${"
	}
	n = strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -/().\u00a0", r) {
			return -1
		}
		return r
	}, v)
	if err := rules.Dialable(n, b.deny); err != nil {
		return "", err.Error()
	}
	return n, ""
}

// refuse counts and logs a refused value (not the value itself: it may be
// a token, or hostile); the same value of the same entry counts once.
func (b *builder) refuse(dn, attr, value, why string) {
	k := canonDN(dn) + "\x00" + lower(attr) + "\x00" + value
	if b.seen[k] {
		return // the same entry found as a user and in the phone book
	}
	b.seen[k] = true
	b.s.refused++
	b.log.Warn("directory: value refused", "dn", dn, "attribute", attr, "why", why)
}

// group is a group's members: canonical DNs and logins (memberUid).
type group struct{ dns, uids map[string]bool }

func (g group) has(dn, login string) bool {
	return g.dns[canonDN(dn)] || g.uids[login]
}

// members reads the group of DN dn ("" or absent: nobody).
func (b *builder) members(raw *Raw, dn string) group {
	g := group{dns: map[string]bool{}, uids: map[string]bool{}}
	if dn == "" {
		return g
	}
	r, ok := raw.Groups[dn]
	if !ok {
		b.log.Warn("directory: group not found; it grants nobody", "group", dn)
		return g
	}
	for _, a := range []string{"member", "uniqueMember"} {
		for _, m := range r.Get(a) {
			g.dns[canonDN(m)] = true
		}
	}
	for _, m := range r.Get("memberUid") {
		g.uids[m] = true
	}
	return g
}

// canonDN is dn in a form equal DNs share (attribute types and values in
// lower case, no spaces around separators); an unparsable DN stays as it
// is, in lower case.
func canonDN(dn string) string {
	p, err := ldap.ParseDN(dn)
	if err != nil {
		return lower(dn)
	}
	var rdns []string
	for _, r := range p.RDNs {
		var avs []string
		for _, av := range r.Attributes {
			avs = append(avs, lower(av.Type)+"="+lower(av.Value))
		}
		rdns = append(rdns, strings.Join(avs, "+"))
	}
	return strings.Join(rdns, ",")
}

// cleanText reports v free of what must never travel on: invalid UTF-8,
// control characters and "${" (a dialplan or template expression).
func cleanText(v string) bool {
	if !utf8.ValidString(v) || strings.Contains(v, "${") {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// validToken: 8 to 256 printable ASCII characters without spaces.
func validToken(t string) bool {
	if len(t) < 8 || len(t) > 256 || strings.Contains(t, "${") {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return false
		}
	}
	return true
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

func lower(s string) string { return strings.ToLower(s) }
