package directory_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// adminToken is the config's own token in the box tests.
const adminToken = testbox.Token

// dirBox is a running box whose directory is read from src.
type dirBox struct {
	box  *box.Box
	base string
}

// startBox runs a box on the test line with cfg.LDAP set to ldap (its
// directory read from src when not nil) and waits for the first read.
func startBox(t *testing.T, ldap config.LDAP, src directory.Source) *dirBox {
	t.Helper()
	e := testbox.StartWith(t, testbox.Options{
		Config: func(c *config.Config) {
			c.TestLine.PageTime = job.Duration(20 * time.Millisecond)
			c.LDAP = ldap
		},
		Box:   box.Options{DirectorySource: src},
		Ready: func(b *box.Box) bool { return b.Directory().Status().LastAttempt != nil },
	})
	return &dirBox{box: e.Box, base: e.C.Base}
}

// call sends a request with the Authorization header auth ("Bearer …",
// or user:password for Basic) and decodes a JSON answer into out.
func (d *dirBox) call(t *testing.T, method, path, auth, ctype string, body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, d.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, ok := strings.Cut(auth, ":"); ok {
		req.SetBasicAuth(u, p)
	} else if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// sendFax submits a one-line text fax to to as auth; it returns the
// status and the job.
func (d *dirBox) sendFax(t *testing.T, auth, to string) (int, job.Job) {
	t.Helper()
	body, ctype := testkit.Multipart(testkit.Field("to", to), testkit.File("file", "note.txt", []byte("hello from the directory\n")))
	var j job.Job
	code := d.call(t, "POST", "/v1/faxes", auth, ctype, body, &j)
	return code, j
}

// officeWithCleo is office() plus cleo, who may place calls only.
func officeWithCleo() *directory.Raw {
	raw := office()
	raw.Users = append(raw.Users, rec(people("cleo"), "uid", "cleo", "cn", "Cleo Cole", "telephoneNumber", "0307777", "faxToken", "cleo-token-0007"))
	g := raw.Groups[callGroup]
	g.Attrs["memberuid"] = append(g.Attrs["memberuid"], "cleo")
	return raw
}

// TestBoxAdmitsDirectoryUsers: on a running box, directory users reach the
// API by token or password with their groups' rights, the phone book
// answers, an agent is named by name, and an outage shows the alarm.
func TestBoxAdmitsDirectoryUsers(t *testing.T) {
	testkit.Require(t, "gs")
	f := &fake{raw: officeWithCleo(), pw: map[string]string{people("bob"): "bob-secret"}}
	d := startBox(t, ldapCfg(), f)

	if code, j := d.sendFax(t, "bob-token-00002", "99990001"); code != http.StatusAccepted || j.ID == "" {
		t.Fatalf("bob's fax: %d %+v", code, j)
	}
	if code, _ := d.sendFax(t, "bob:bob-secret", "99990001"); code != http.StatusAccepted {
		t.Errorf("bob's fax with his password: %d", code)
	}
	for auth, want := range map[string]int{"cleo-token-0007": 403, "carl-token-0003": 401, "bob:wrong": 401, "eve-token-00005": 401} {
		if code, _ := d.sendFax(t, auth, "99990001"); code != want {
			t.Errorf("fax as %s: %d, want %d", auth, code, want)
		}
	}
	var book struct{ Entries []directory.Entry }
	if code := d.call(t, "GET", "/v1/directory?q="+url.QueryEscape("müller"), "cleo-token-0007", "", nil, &book); code != 200 || len(book.Entries) != 2 {
		t.Errorf("phone book: %d %+v", code, book)
	}
	click := `{"kind": "click2call", "agent": "Anna Alt", "to": "99990001"}`
	var call job.Job
	if code := d.call(t, "POST", "/v1/calls", "anna-token-0001", "application/json", strings.NewReader(click), &call); code != 202 || call.Call.Agent != "0301111" {
		t.Errorf("click-to-call with agent Anna Alt: %d %+v", code, call.Call)
	}
	if code := d.call(t, "POST", "/v1/calls", "bob-token-00002", "application/json", strings.NewReader(click), nil); code != 403 {
		t.Errorf("a call by bob (send only): %d, want 403", code)
	}
	if code := d.call(t, "POST", "/v1/lines/test/1/busy", "anna-token-0001", "", nil, nil); code != 403 {
		t.Errorf("line busy by a directory user: %d, want 403", code)
	}
	if code := d.call(t, "POST", "/v1/lines/test/1/busy", adminToken, "", nil, nil); code != 200 {
		t.Errorf("line busy by the config's token: %d", code)
	}

	f.set(nil, &net.OpError{Op: "dial", Err: io.EOF})
	if err := d.box.Directory().Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a failing source answered nil")
	}
	var st struct {
		Extra struct {
			Alarms    []string
			Directory directory.Status
		}
	}
	if code := d.call(t, "GET", "/v1/status", "bob-token-00002", "", nil, &st); code != 200 ||
		!slices.Contains(st.Extra.Alarms, directory.Alarm) || st.Extra.Directory.State != "unreachable" {
		t.Errorf("status during the outage: %d %+v", code, st.Extra)
	}
	if code, _ := d.sendFax(t, "bob:bob-secret", "99990001"); code != 401 {
		t.Errorf("a password during the outage: %d, want 401", code)
	}
}
