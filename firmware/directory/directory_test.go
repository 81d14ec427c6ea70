package directory_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/inbound"
	"github.com/faxbox/faxbox/firmware/job"
)

const (
	sendGroup     = "cn=fax,ou=groups,dc=example,dc=com"
	callGroup     = "cn=phone,ou=groups,dc=example,dc=com"
	callbackGroup = "cn=callback,ou=groups,dc=example,dc=com"
)

// fake is a directory server: its copy, an error to answer reads with,
// and the users' passwords.
type fake struct {
	mu    sync.Mutex
	raw   *directory.Raw
	err   error
	pw    map[string]string // dn → password
	binds int
	reads int
}

func (f *fake) Read(ctx context.Context) (*directory.Raw, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return f.raw, nil
}

func (f *fake) Bind(ctx context.Context, dn, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.binds++
	if f.err != nil {
		return f.err
	}
	if password == "" || f.pw[dn] != password {
		return errors.New("invalid credentials")
	}
	return nil
}

func (f *fake) set(raw *directory.Raw, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if raw != nil {
		f.raw = raw
	}
	f.err = err
}

func rec(dn string, kv ...string) directory.Record {
	r := directory.Record{DN: dn, Attrs: map[string][]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		k := strings.ToLower(kv[i])
		r.Attrs[k] = append(r.Attrs[k], kv[i+1])
	}
	return r
}

func people(uid string) string { return "uid=" + uid + ",ou=people,dc=example,dc=com" }

// office is a small directory: anna sends and places calls, bob only
// sends, carl is in no group, dora is called back; two Müllers share a
// name's start; hostile values on eve, mallory and the Evil Corp.
func office() *directory.Raw {
	return &directory.Raw{
		Users: []directory.Record{
			rec(people("anna"), "uid", "anna", "cn", "Anna Alt", "telephoneNumber", "030 111-1", "faxToken", "anna-token-0001"),
			rec(people("bob"), "uid", "bob", "cn", "Bob Brandt", "telephoneNumber", "0302222", "faxToken", "bob-token-00002"),
			rec(people("carl"), "uid", "carl", "cn", "Carl Cohn", "telephoneNumber", "0303333", "faxToken", "carl-token-0003"),
			rec(people("dora"), "uid", "dora", "cn", "Dora Dahl", "telephoneNumber", "(030) 4444", "telephoneNumber", "0900123456"),
			rec(people("eve"), "uid", "eve", "cn", "Eve\r\nEvil: yes", "telephoneNumber", "0305555", "faxToken", "eve-token-00005"),
			rec(people("mallory"), "uid", "mallory", "cn", "Mallory", "telephoneNumber", "${SHELL}", "telephoneNumber", "03066a6",
				"telephoneNumber", "0306666\n", "telephoneNumber", "+4930666", "faxToken", "short", "faxToken", "with space token"),
		},
		Book: []directory.Record{
			rec("o=Müller GmbH,ou=book,dc=example,dc=com", "o", "Müller GmbH", "facsimileTelephoneNumber", "040 7777-1", "telephoneNumber", "0407777"),
			rec("o=Müller AG,ou=book,dc=example,dc=com", "o", "Müller AG", "facsimileTelephoneNumber", "089/8888"),
			rec("o=Evil Corp,ou=book,dc=example,dc=com", "o", "Evil ${EXTEN} Corp", "facsimileTelephoneNumber", "0309999"),
			rec(people("bob"), "uid", "bob", "cn", "Bob Brandt", "telephoneNumber", "0302222"),
		},
		Groups: map[string]directory.Record{
			sendGroup:     rec(sendGroup, "member", "UID=anna, ou=People,dc=example,dc=com", "member", people("bob"), "member", people("eve")),
			callGroup:     rec(callGroup, "memberUid", "anna", "memberUid", "mallory"),
			callbackGroup: rec(callbackGroup, "uniqueMember", people("dora"), "uniqueMember", people("mallory")),
		},
	}
}

func ldapCfg() config.LDAP {
	return config.LDAP{URL: "ldap://directory.invalid", BaseDN: "dc=example,dc=com", TokenAttribute: "faxToken",
		SendGroup: sendGroup, CallGroup: callGroup, CallbackGroup: callbackGroup, TTL: config.Duration(time.Minute)}
}

// newDir returns a directory on f, read once (successfully unless f fails),
// and its log.
func newDir(t *testing.T, f *fake) (*directory.Directory, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	d, err := directory.New(directory.Config{LDAP: ldapCfg(), Deny: config.Default().Calls.DenyPrefixes, Source: f,
		Clock: clock.NewFake(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)), Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d, &log
}

func auth(d *directory.Directory, c directory.Credentials) (directory.Principal, error) {
	return d.Authenticate(context.Background(), c)
}

// TestRightsFromGroups: a token admits its user with the rights of its
// groups; a user in no group, an unknown token and a refused token admit
// nobody.
func TestRightsFromGroups(t *testing.T) {
	d, _ := newDir(t, &fake{raw: office()})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token      string
		send, call bool
	}{{"anna-token-0001", true, true}, {"bob-token-00002", true, false}} {
		p, err := auth(d, directory.Credentials{Token: c.token})
		if err != nil || p.Send != c.send || p.Call != c.call {
			t.Errorf("token %s: %+v, %v; want send %v call %v", c.token, p, err, c.send, c.call)
		}
	}
	for _, tok := range []string{"carl-token-0003", "nobody-token-9", "eve-token-00005", "short", "with space token", "anna-token-000", ""} {
		if p, err := auth(d, directory.Credentials{Token: tok}); !errors.Is(err, directory.ErrDenied) {
			t.Errorf("token %q admitted as %+v (%v)", tok, p, err)
		}
	}
}

// TestPasswordBoundLive: HTTP Basic is a bind as the user; a wrong or
// empty password, a user in no group and an unknown login are refused (the
// last two without asking the server).
func TestPasswordBoundLive(t *testing.T) {
	f := &fake{raw: office(), pw: map[string]string{people("bob"): "bob-secret", people("carl"): "carl-secret"}}
	d, _ := newDir(t, f)
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p, err := auth(d, directory.Credentials{User: "BOB", Password: "bob-secret"}); err != nil || !p.Send || p.Login != "bob" {
		t.Fatalf("bob: %+v, %v", p, err)
	}
	for _, c := range []directory.Credentials{{User: "bob", Password: "wrong"}, {User: "bob"}, {User: "carl", Password: "carl-secret"},
		{User: "zed", Password: "x"}} {
		if p, err := auth(d, c); !errors.Is(err, directory.ErrDenied) {
			t.Errorf("%s/%q admitted as %+v (%v)", c.User, c.Password, p, err)
		}
	}
	if f.binds != 2 {
		t.Errorf("%d binds; want 2 (bob twice; carl, zed and the empty password not asked)", f.binds)
	}
}

// TestHostileValuesRefused: CR/LF, ${…}, letters in numbers, denied
// prefixes and malformed tokens never get into the copy; each refusal is
// counted and logged.
func TestHostileValuesRefused(t *testing.T) {
	d, log := newDir(t, &fake{raw: office()})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := d.Search("e") // every name with an e
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if strings.Contains(e.Name, "Eve") || strings.Contains(e.Name, "Evil") {
			t.Errorf("hostile entry in the phone book: %+v", e)
		}
		for _, n := range append(append([]string{}, e.Phones...), e.Faxes...) {
			if strings.Trim(n, "0123456789") != "" {
				t.Errorf("%s: number %q is not digits", e.Name, n)
			}
		}
	}
	m, err := d.Search("mallory")
	if err != nil || len(m) != 0 {
		t.Errorf("mallory (no valid number) in the book: %+v %v", m, err)
	}
	if d.CallbackAllowed("0900123456") || !d.CallbackAllowed("0304444") {
		t.Errorf("dora's premium-rate number allowed, or her valid one not")
	}
	// eve (name), mallory: 5 numbers + 2 tokens, dora: 0900, the evil corp.
	if st := d.Status(); st.Refused != 9 || st.State != "ok" {
		t.Errorf("status %+v; want 9 refused", st)
	}
	if n := strings.Count(log.String(), "value refused"); n != 9 {
		t.Errorf("%d refusals logged, want 9:\n%s", n, log)
	}
	if strings.Contains(log.String(), "${SHELL}") || strings.Contains(log.String(), "with space token") {
		t.Errorf("the log repeats a refused value:\n%s", log)
	}
}

// TestPhoneBookAndPick: a name resolves to its one fax number; a part of
// two names is ambiguous and lists both; case does not matter.
func TestPhoneBookAndPick(t *testing.T) {
	d, _ := newDir(t, &fake{raw: office()})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	pick := func(q string) (string, error) {
		found, err := d.Search(q)
		if err != nil {
			return "", err
		}
		return directory.Pick(q, found)
	}
	if n, err := pick("müller gmbh"); n != "04077771" || err != nil {
		t.Errorf("müller gmbh: %q, %v; want 04077771", n, err)
	}
	if n, err := pick("Müller AG"); n != "0898888" || err != nil {
		t.Errorf("Müller AG: %q, %v", n, err)
	}
	_, err := pick("Müller")
	var amb *directory.AmbiguousError
	if !errors.As(err, &amb) || len(amb.Candidates) != 2 || !strings.Contains(err.Error(), "Müller AG: 0898888") ||
		!strings.Contains(err.Error(), "Müller GmbH: 04077771") {
		t.Errorf("Müller: %v; want ambiguous naming both", err)
	}
	if _, err := pick("Bob Brandt"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("Bob (no fax number): %v; want not found", err)
	}
	if _, err := pick("nobody at all"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("nobody: %v", err)
	}
	for _, q := range []string{"", " ", "a\nb", strings.Repeat("x", 101), "${x}"} {
		if _, err := d.Search(q); !errors.Is(err, directory.ErrQuery) {
			t.Errorf("search %q: %v; want ErrQuery", q, err)
		}
	}
	if n, err := d.Agent("Anna Alt"); n != "0301111" || err != nil {
		t.Errorf("agent Anna Alt: %q %v", n, err)
	}
	if _, err := d.Agent("bob"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("agent bob (not in the call group): %v", err)
	}
}

// TestOutageKeepsLastGoodCopy: a failed read keeps the copy (its users
// still admitted, no one else), raises the alarm and fails every password;
// a good read narrows access at once and clears the alarm.
func TestOutageKeepsLastGoodCopy(t *testing.T) {
	f := &fake{raw: office(), pw: map[string]string{people("anna"): "anna-secret"}}
	d, _ := newDir(t, f)
	if _, err := auth(d, directory.Credentials{Token: "anna-token-0001"}); !errors.Is(err, directory.ErrNoCopy) {
		t.Fatalf("before the first read: %v; want ErrNoCopy", err)
	}
	if err := d.Refresh(context.Background()); err != nil || d.Alarm() != "" {
		t.Fatal(err, d.Alarm())
	}
	// The directory goes down after carl was added to the send group.
	wider := office()
	g := wider.Groups[sendGroup]
	g.Attrs["member"] = append(g.Attrs["member"], people("carl"))
	f.set(wider, errors.New("connect: connection refused"))
	if err := d.Refresh(context.Background()); err == nil {
		t.Fatal("a failed read answered nil")
	}
	if d.Alarm() != directory.Alarm || d.Status().State != "unreachable" || !strings.Contains(d.Status().Error, "refused") {
		t.Errorf("alarm %q, status %+v", d.Alarm(), d.Status())
	}
	if _, err := auth(d, directory.Credentials{Token: "anna-token-0001"}); err != nil {
		t.Errorf("anna lost access with the last good copy: %v", err)
	}
	if _, err := auth(d, directory.Credentials{Token: "carl-token-0003"}); err == nil {
		t.Error("carl admitted while the directory is down")
	}
	if _, err := auth(d, directory.Credentials{User: "anna", Password: "anna-secret"}); err == nil {
		t.Error("a password admitted without the directory")
	}
	if !d.CallbackAllowed("0304444") {
		t.Error("dora not called back with the last good copy")
	}
	// Back, with anna removed from every group and dora from callbacks.
	narrow := office()
	narrow.Groups[sendGroup] = rec(sendGroup, "member", people("bob"))
	narrow.Groups[callGroup] = rec(callGroup)
	delete(narrow.Groups, callbackGroup)
	f.set(narrow, nil)
	if err := d.Refresh(context.Background()); err != nil || d.Alarm() != "" {
		t.Fatal(err, d.Alarm())
	}
	if _, err := auth(d, directory.Credentials{Token: "anna-token-0001"}); err == nil {
		t.Error("anna still admitted after leaving her groups")
	}
	if d.CallbackAllowed("0304444") {
		t.Error("dora still called back")
	}
}

// TestRereadEveryTTL: Start reads at once and again after the TTL; after a
// failure, after RetryAfterFailure.
func TestRereadEveryTTL(t *testing.T) {
	f := &fake{raw: office()}
	clk := clock.NewFake(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	d, err := directory.New(directory.Config{LDAP: ldapCfg(), Source: f, Clock: clk, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	reads := func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.reads }
	waitFor := func(n int) {
		t.Helper()
		for i := 0; i < 200 && (reads() < n || clk.Pending() == 0); i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if reads() != n {
			t.Fatalf("%d reads, want %d", reads(), n)
		}
	}
	d.Start()
	waitFor(1)
	clk.Advance(59 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if reads() != 1 {
		t.Fatalf("read again before the TTL")
	}
	f.set(nil, errors.New("down"))
	clk.Advance(time.Second)
	waitFor(2)
	clk.Advance(directory.RetryAfterFailure)
	waitFor(3)
	if d.Status().LastSync == nil || d.Alarm() == "" {
		t.Errorf("status %+v alarm %q", d.Status(), d.Alarm())
	}
}

// TestCallbackGroupCalledBack: the inbound callback service calls back a
// member of the callback group and nobody else.
func TestCallbackGroupCalledBack(t *testing.T) {
	d, _ := newDir(t, &fake{raw: office()})
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var called []string
	s := inbound.New(inbound.Config{Callback: config.Callback{Number: "5000", PerHour: 3}, Clock: clock.NewFake(time.Now()),
		Log: slog.New(slog.DiscardHandler), Allowed: d.CallbackAllowed,
		Submit: func(j *job.Job) error { mu.Lock(); defer mu.Unlock(); called = append(called, j.To); return nil }})
	for _, c := range []string{"0304444", "0301111", "0900123456", "0306666", ""} {
		s.Handle(c)
	}
	if !slices.Equal(called, []string{"0304444"}) {
		t.Errorf("called back %v; want only dora's 0304444", called)
	}
}
