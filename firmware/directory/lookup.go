package directory

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Credentials are what an API client presented: a bearer Token, or a
// User and Password (HTTP Basic).
type Credentials struct {
	Token, User, Password string
}

// Principal is a directory user the directory admitted, with its rights.
type Principal struct {
	Name, Login string
	// Send: member of ldap.send_group (may send faxes); Call: member of
	// ldap.call_group (may place calls).
	Send, Call bool
}

// Authenticate admits a directory user: a Token equal to one of a user's
// token attribute values (in the last good copy), or a User (login name)
// whose Password the directory server accepts now (a live bind as the
// user). Only members of the send or call group are admitted; anything
// else is ErrDenied (or ErrNoCopy before the first read).
func (d *Directory) Authenticate(ctx context.Context, c Credentials) (Principal, error) {
	s, err := d.copy()
	if err != nil {
		return Principal{}, err
	}
	var u *user
	switch {
	case c.Token != "":
		u = s.byToken(c.Token)
	case c.User != "" && c.Password != "":
		u = s.byLogin(c.User)
		if u != nil && (u.send || u.call) {
			bctx, cancel := context.WithTimeout(ctx, d.cfg.LDAP.Timeout.D())
			err := d.src.Bind(bctx, u.DN, c.Password)
			cancel()
			if err != nil {
				d.log.Info("directory: password refused", "login", u.Login, "err", err)
				return Principal{}, fmt.Errorf("%w: %s: %w", ErrDenied, u.Login, err)
			}
		}
	}
	if u == nil || !(u.send || u.call) {
		return Principal{}, ErrDenied
	}
	return Principal{Name: u.Name, Login: u.Login, Send: u.send, Call: u.call}, nil
}

// byToken finds the user holding token t, comparing every token in
// constant time.
func (s *snapshot) byToken(t string) *user {
	var found *user
	for i := range s.users {
		for _, ut := range s.users[i].tokens {
			if subtle.ConstantTimeCompare([]byte(t), []byte(ut)) == 1 && found == nil {
				found = &s.users[i]
			}
		}
	}
	return found
}

// byLogin finds the one user of login name l (any case); nil when there is
// none or more than one.
func (s *snapshot) byLogin(l string) *user {
	var found *user
	for i := range s.users {
		if strings.EqualFold(s.users[i].Login, l) {
			if found != nil {
				return nil
			}
			found = &s.users[i]
		}
	}
	return found
}

// CallbackAllowed reports whether caller is a number of a member of
// ldap.callback_group in the last good copy (nothing before the first
// read).
func (d *Directory) CallbackAllowed(caller string) bool {
	s, err := d.copy()
	return err == nil && caller != "" && s.callers[caller]
}

// Agent resolves a click-to-call agent given by login or name (any case)
// to the phone number of the one member of ldap.call_group it names. No
// such member is ErrNotFound; several members, or one with several phone
// numbers, is an *AmbiguousError.
func (d *Directory) Agent(q string) (string, error) {
	s, err := d.copy()
	if err != nil {
		return "", err
	}
	var hits []Entry
	for _, u := range s.users {
		if u.call && len(u.Phones) > 0 && (strings.EqualFold(u.Login, q) || fold(u.Name) == fold(q)) {
			hits = append(hits, u.Entry)
		}
	}
	if len(hits) == 0 {
		return "", fmt.Errorf("%w: no agent (a member of the call group with a phone number) is called %q", ErrNotFound, q)
	}
	if len(hits) > 1 || len(hits[0].Phones) > 1 {
		return "", &AmbiguousError{Query: q, Candidates: hits, Phones: true}
	}
	return hits[0].Phones[0], nil
}

// MaxResults bounds a Search's answer.
const MaxResults = 50

// Search returns the phone book entries whose name contains q, whose
// login is q, or with a number starting with q (case and accents as
// written, letters compared without case); those named exactly q come
// first, then by name. At most MaxResults.
func (d *Directory) Search(q string) ([]Entry, error) {
	q = strings.TrimSpace(q)
	if q == "" || utf8.RuneCountInString(q) > 100 || !cleanText(q) {
		return nil, ErrQuery
	}
	s, err := d.copy()
	if err != nil {
		return nil, err
	}
	fq := fold(q)
	var out []Entry
	for _, e := range s.book {
		if strings.Contains(fold(e.Name), fq) || strings.EqualFold(e.Login, q) || hasPrefix(e.Phones, q) || hasPrefix(e.Faxes, q) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ei, ej := fold(out[i].Name) == fq, fold(out[j].Name) == fq
		if ei != ej {
			return ei
		}
		return fold(out[i].Name) < fold(out[j].Name)
	})
	if len(out) > MaxResults {
		out = out[:MaxResults]
	}
	return out, nil
}

// AmbiguousError is a name that names more than one number.
type AmbiguousError struct {
	Query      string
	Candidates []Entry
	// Phones: the candidates' phone numbers are meant (else fax numbers).
	Phones bool
}

func (e *AmbiguousError) Error() string {
	var c []string
	for _, en := range e.Candidates {
		nums := en.Faxes
		if e.Phones {
			nums = en.Phones
		}
		for _, n := range nums {
			c = append(c, fmt.Sprintf("%s: %s", en.Name, n))
		}
	}
	return fmt.Sprintf("directory: %q is ambiguous; it names %s", e.Query, strings.Join(c, "; "))
}

// Pick chooses the fax number q names among the entries a Search for q
// answered: an entry named exactly q (or of login q) when there is one,
// else the entries found; that must come to one fax number. None is
// ErrNotFound, more than one an *AmbiguousError listing the candidates.
func Pick(q string, found []Entry) (string, error) {
	var exact, withFax []Entry
	for _, e := range found {
		if len(e.Faxes) == 0 {
			continue
		}
		withFax = append(withFax, e)
		if fold(e.Name) == fold(strings.TrimSpace(q)) || strings.EqualFold(e.Login, q) {
			exact = append(exact, e)
		}
	}
	pool := withFax
	if len(exact) > 0 {
		pool = exact
	}
	switch {
	case len(pool) == 0:
		return "", fmt.Errorf("%w: no entry with a fax number matches %q", ErrNotFound, q)
	case len(pool) == 1 && len(pool[0].Faxes) == 1:
		return pool[0].Faxes[0], nil
	}
	return "", &AmbiguousError{Query: q, Candidates: pool}
}

// fold is s for comparing without case.
func fold(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

func hasPrefix(nums []string, q string) bool {
	for _, n := range nums {
		if len(q) >= 3 && strings.HasPrefix(n, q) {
			return true
		}
	}
	return false
}
