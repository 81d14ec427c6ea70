//go:build lab

package directory_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/cli"
	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/inbound"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

const (
	suffix   = "dc=example,dc=com"
	rootDN   = "cn=admin," + suffix
	rootPW   = "admin-secret"
	readerDN = "cn=faxbox,ou=system," + suffix
	readerPW = "reader-secret"
)

// slapd is a private OpenLDAP server on 127.0.0.1, its database in a
// temporary directory (Debian's default database is not used).
type slapd struct {
	t    *testing.T
	dir  string
	url  string
	tls  string // the ldaps:// URL, with TLS
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  bytes.Buffer
}

// tokenSchema adds the attribute the API tokens are kept in.
const tokenSchema = `attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'faxboxToken'
  DESC 'faxbox API token' EQUALITY caseExactMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'faxboxPhone'
  DESC 'a number kept as free text, as some directories keep them' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'faxboxUser' SUP top AUXILIARY MAY ( faxboxToken $ faxboxPhone ) )
`

// slapdConf is the server's configuration: the reader may read everything
// but passwords, a user may bind with its password, anonymous reads
// nothing.
const slapdConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {{dir}}/faxbox.schema
pidfile {{dir}}/slapd.pid
argsfile {{dir}}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "` + suffix + `"
rootdn "` + rootDN + `"
rootpw ` + rootPW + `
directory {{dir}}/db
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="` + readerDN + `" read by * none
`

// startSlapd writes the configuration and starts slapd on a free port;
// with tlsConf (certificate lines for slapd.conf) also on an ldaps:// one.
func startSlapd(t *testing.T, tlsConf string) *slapd {
	t.Helper()
	testkit.Require(t, "slapd", "ldapadd")
	s := &slapd{t: t, dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(s.dir, "faxbox.schema"), tokenSchema)
	write(t, filepath.Join(s.dir, "slapd.conf"), tlsConf+strings.ReplaceAll(slapdConf, "{{dir}}", s.dir))
	s.url = "ldap://" + freePort(t)
	if tlsConf != "" {
		s.tls = "ldaps://" + freePort(t)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// freePort returns 127.0.0.1:<a port free just now>.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs slapd in the foreground (-d 0) and waits until it accepts
// connections.
func (s *slapd) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	urls := s.url + "/"
	if s.tls != "" {
		urls += " " + s.tls + "/"
	}
	cmd := exec.Command("slapd", "-d", "0", "-h", urls, "-f", filepath.Join(s.dir, "slapd.conf"))
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	addr := strings.TrimPrefix(s.url, "ldap://")
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("slapd exited: %s", s.log.String())
		default:
		}
		if i > 100 {
			s.t.Fatalf("slapd does not answer on %s: %v\n%s", addr, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends slapd and waits for it.
func (s *slapd) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// add loads LDIF with ldapadd as the root DN.
func (s *slapd) add(ldif string) {
	s.t.Helper()
	cmd := exec.Command("ldapadd", "-x", "-H", s.url, "-D", rootDN, "-w", rootPW)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("ldapadd: %v\n%s\n%s", err, out, ldif)
	}
}

// entry writes one LDIF entry; values that are not plain ASCII (UTF-8
// names, CR/LF) are base64 as LDIF wants them.
func entry(dn string, kv ...string) string {
	var b strings.Builder
	line := func(k, v string) {
		safe := utf8.ValidString(v) && !strings.ContainsAny(v, "\r\n\x00") && !strings.HasPrefix(v, " ") && !strings.HasPrefix(v, ":")
		for _, r := range v {
			safe = safe && r < 0x80
		}
		if safe {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		} else {
			fmt.Fprintf(&b, "%s:: %s\n", k, base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	line("dn", dn)
	for i := 0; i+1 < len(kv); i += 2 {
		line(kv[i], kv[i+1])
	}
	return b.String() + "\n"
}

func person(uid, cn string, kv ...string) string {
	return entry("uid="+uid+",ou=people,"+suffix, append([]string{"objectClass", "inetOrgPerson", "objectClass", "faxboxUser",
		"uid", uid, "cn", cn, "sn", uid}, kv...)...)
}

// officeLDIF is the test directory: anna sends and calls (token), bob
// sends (password), carl is in no group, dora is called back, eve's name
// and mallory's numbers and token are hostile; two Müllers.
func officeLDIF() string {
	ou := func(name string) string {
		return entry("ou="+name+","+suffix, "objectClass", "organizationalUnit", "ou", name)
	}
	group := func(cn string, members ...string) string {
		kv := []string{"objectClass", "groupOfNames", "cn", cn}
		for _, m := range members {
			kv = append(kv, "member", "uid="+m+",ou=people,"+suffix)
		}
		return entry("cn="+cn+",ou=groups,"+suffix, kv...)
	}
	return entry(suffix, "objectClass", "dcObject", "objectClass", "organization", "dc", "example", "o", "Example") +
		ou("people") + ou("groups") + ou("book") + ou("system") +
		entry(readerDN, "objectClass", "simpleSecurityObject", "objectClass", "organizationalRole", "cn", "faxbox", "userPassword", readerPW) +
		person("anna", "Anna Alt", "telephoneNumber", "030 1111", "faxboxToken", "anna-token-0001") +
		person("bob", "Bob Brandt", "telephoneNumber", "030-2222", "userPassword", "bob-secret") +
		person("carl", "Carl Cohn", "telephoneNumber", "0303333", "faxboxToken", "carl-token-0003", "userPassword", "carl-secret") +
		person("dora", "Dora Dahl", "telephoneNumber", "(030) 4444") +
		person("eve", "Eve\r\nX-Injected: yes", "telephoneNumber", "0305555", "faxboxToken", "eve-token-00005") +
		person("mallory", "Mallory Mink", "telephoneNumber", "0306666", "telephoneNumber", "030 66a6",
			"telephoneNumber", "0900 5555", "facsimileTelephoneNumber", "0306667",
			"faxboxPhone", "0306668${EXTEN}", "faxboxPhone", "0306669\r\nChannel: PJSIP/0900",
			"faxboxToken", "mallory ${EXTEN} token") +
		entry("o=Müller GmbH,ou=book,"+suffix, "objectClass", "organization", "o", "Müller GmbH",
			"facsimileTelephoneNumber", "9999 000-1", "telephoneNumber", "040 7777 0") +
		entry("o=Müller AG,ou=book,"+suffix, "objectClass", "organization", "o", "Müller AG", "facsimileTelephoneNumber", "9999 0003") +
		entry("o=Evil Corp,ou=book,"+suffix, "objectClass", "organization", "o", "Evil ${EXTEN} Corp", "facsimileTelephoneNumber", "0309999") +
		group("fax", "anna", "bob", "eve", "mallory") + group("phone", "anna") + group("callback", "dora")
}

func slapdLDAP(url string) config.LDAP {
	return config.LDAP{URL: url, BindDN: readerDN, BindPassword: readerPW, BaseDN: suffix, TokenAttribute: "faxboxToken",
		PhoneAttributes: []string{"telephoneNumber", "facsimileTelephoneNumber", "faxboxPhone"},
		SendGroup:       "cn=fax,ou=groups," + suffix, CallGroup: "cn=phone,ou=groups," + suffix, CallbackGroup: "cn=callback,ou=groups," + suffix,
		TTL: config.Duration(time.Hour), Timeout: config.Duration(3 * time.Second)}
}

// TestSlapd runs a box against a real OpenLDAP server: directory users
// authenticate to the API, the callback group is called back and no one
// else, a name resolves to its fax number through the CLI and an
// ambiguous one is refused, hostile values are refused, and with slapd
// stopped the box keeps its last good copy and raises the alarm.
func TestSlapd(t *testing.T) {
	testkit.Require(t, "gs")
	s := startSlapd(t, "")
	s.add(officeLDIF())
	d := startBox(t, slapdLDAP(s.url), nil)
	dir := d.box.Directory()
	if st := dir.Status(); st.State != "ok" {
		t.Fatalf("directory status %+v\n%s", st, s.log.String())
	}

	t.Run("api", func(t *testing.T) { slapdAPI(t, d) })
	t.Run("callback", func(t *testing.T) { slapdCallback(t, dir) })
	t.Run("names", func(t *testing.T) { slapdNames(t, d) })
	t.Run("hostile", func(t *testing.T) { slapdHostile(t, d, dir) })
	t.Run("outage", func(t *testing.T) { slapdOutage(t, s, d, dir) })
}

// slapdAPI: a token and a password admit their users with their groups'
// rights; the rest is refused.
func slapdAPI(t *testing.T, d *dirBox) {
	if code, j := d.sendFax(t, "anna-token-0001", "99990001"); code != http.StatusAccepted || j.ID == "" {
		t.Errorf("anna's fax (token): %d %+v", code, j)
	}
	if code, _ := d.sendFax(t, "bob:bob-secret", "99990001"); code != http.StatusAccepted {
		t.Errorf("bob's fax (password): %d", code)
	}
	for auth, want := range map[string]int{"bob:wrong-secret": 401, "bob:": 401, "carl-token-0003": 401, "carl:carl-secret": 401,
		"no-such-token-1": 401} {
		if code, _ := d.sendFax(t, auth, "99990001"); code != want {
			t.Errorf("fax as %q: %d, want %d", auth, code, want)
		}
	}
	if code := d.call(t, "POST", "/v1/calls", "bob:bob-secret", "application/json",
		strings.NewReader(`{"kind": "click2call", "agent": "anna", "to": "99990001"}`), nil); code != 403 {
		t.Errorf("a call by bob (fax group only): %d, want 403", code)
	}
	var call job.Job
	if code := d.call(t, "POST", "/v1/calls", "anna-token-0001", "application/json",
		strings.NewReader(`{"kind": "click2call", "agent": "anna", "to": "99990001"}`), &call); code != 202 || call.Call == nil || call.Call.Agent != "0301111" {
		t.Errorf("anna's click-to-call with agent anna: %d %+v", code, call.Call)
	}
}

// slapdCallback: the inbound callback service with the box's directory
// calls back dora (callback group) and not carl.
func slapdCallback(t *testing.T, dir *directory.Directory) {
	var mu sync.Mutex
	var called []string
	svc := inbound.New(inbound.Config{Callback: config.Callback{Number: "5000", PerHour: 3}, Clock: clock.NewFake(time.Now()),
		Allowed: dir.CallbackAllowed,
		Submit:  func(j *job.Job) error { mu.Lock(); defer mu.Unlock(); called = append(called, j.To); return nil }})
	svc.Handle("0303333") // carl
	svc.Handle("0304444") // dora
	if !slices.Equal(called, []string{"0304444"}) {
		t.Errorf("called back %v; want dora's 0304444 only", called)
	}
}

// slapdNames: faxbox send -to NAME resolves through GET /v1/directory.
func slapdNames(t *testing.T, d *dirBox) {
	doc := filepath.Join(t.TempDir(), "note.txt")
	write(t, doc, "hello\n")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := map[string]string{"FAXBOX_URL": d.base, "FAXBOX_TOKEN": "anna-token-0001", "HOME": t.TempDir()}
		code := cli.Run(context.Background(), "send", args, cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
		return code, out.String(), errb.String()
	}
	code, out, stderr := run("-json", "-to", "müller gmbh", doc)
	if code != cli.ExitOK || !strings.Contains(out, `"to": "99990001"`) {
		t.Errorf("send -to 'müller gmbh': exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = run("-to", "Müller", doc)
	if code != cli.ExitRefused || out != "" || !strings.Contains(stderr, "99990001") || !strings.Contains(stderr, "99990003") {
		t.Errorf("send -to Müller: exit %d, want %d with both candidates\n%s\n%s", code, cli.ExitRefused, out, stderr)
	}
	code, _, stderr = run("-to", "Nobody Known", doc)
	if code != cli.ExitRefused || !strings.Contains(stderr, "no fax number") {
		t.Errorf("send -to 'Nobody Known': exit %d\n%s", code, stderr)
	}
}

// slapdHostile: eve (CR/LF in her name), mallory's ${…} token and the
// Evil Corp's name never get in; the refusals are counted.
func slapdHostile(t *testing.T, d *dirBox, dir *directory.Directory) {
	if code, _ := d.sendFax(t, "eve-token-00005", "99990001"); code != 401 {
		t.Errorf("eve (CR/LF in her name) admitted: %d", code)
	}
	if code, _ := d.sendFax(t, "mallory ${EXTEN} token", "99990001"); code != 401 {
		t.Errorf("mallory's hostile token admitted: %d", code)
	}
	for _, q := range []string{"Evil", "Eve", "X-Injected"} {
		var book struct{ Entries []directory.Entry }
		if code := d.call(t, "GET", "/v1/directory?q="+q, "anna-token-0001", "", nil, &book); code != 200 || len(book.Entries) != 0 {
			t.Errorf("search %q: %d %+v; want nothing", q, code, book.Entries)
		}
	}
	var book struct{ Entries []directory.Entry }
	if code := d.call(t, "GET", "/v1/directory?q=mallory", "anna-token-0001", "", nil, &book); code != 200 || len(book.Entries) != 1 ||
		!slices.Equal(book.Entries[0].Phones, []string{"0306666"}) || !slices.Equal(book.Entries[0].Faxes, []string{"0306667"}) {
		t.Errorf("mallory: %d %+v; want her two valid numbers only", code, book.Entries)
	}
	if st := dir.Status(); st.Refused != 7 {
		t.Errorf("%d values refused, want 7 (eve's name, mallory's token and four numbers, the Evil Corp's name)", st.Refused)
	}
}

// slapdOutage: slapd stopped → the last good copy stays (tokens work,
// passwords do not), the alarm shows; slapd back → the alarm clears.
func slapdOutage(t *testing.T, s *slapd, d *dirBox, dir *directory.Directory) {
	s.stop()
	if err := dir.Refresh(context.Background()); err == nil {
		t.Fatal("a read with slapd stopped succeeded")
	}
	var st struct {
		Extra struct {
			Alarms    []string
			Directory directory.Status
		}
	}
	if code := d.call(t, "GET", "/v1/status", "anna-token-0001", "", nil, &st); code != 200 ||
		!slices.Contains(st.Extra.Alarms, directory.Alarm) || st.Extra.Directory.State != "unreachable" || st.Extra.Directory.Users == 0 {
		t.Errorf("status with slapd stopped (anna's token from the last good copy): %d %+v", code, st.Extra)
	}
	if code, _ := d.sendFax(t, "bob:bob-secret", "99990001"); code != 401 {
		t.Errorf("a password with slapd stopped: %d, want 401", code)
	}
	s.start()
	if err := dir.Refresh(context.Background()); err != nil || dir.Alarm() != "" {
		t.Errorf("after slapd came back: %v, alarm %q", err, dir.Alarm())
	}
	if code, _ := d.sendFax(t, "bob:bob-secret", "99990001"); code != 202 {
		t.Errorf("bob's password after slapd came back: %d", code)
	}
}

// TestSlapdTLS: the directory is read over StartTLS and over ldaps://
// with the office CA of ldap.ca_cert; a server whose certificate does not
// chain to the CA configured is not read.
func TestSlapdTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, dir)
	s := startSlapd(t, fmt.Sprintf("TLSCACertificateFile %s/ca.pem\nTLSCertificateFile %s/server.pem\nTLSCertificateKeyFile %s/server.key\n", dir, dir, dir))
	s.add(officeLDIF())
	read := func(cfg config.LDAP) (*directory.Directory, error) {
		d, err := directory.New(directory.Config{LDAP: cfg, Clock: clock.Real{}})
		if err != nil {
			t.Fatal(err)
		}
		return d, d.Refresh(context.Background())
	}
	starttls := slapdLDAP(s.url)
	starttls.StartTLS, starttls.CACert = true, ca
	ldaps := slapdLDAP(s.tls)
	ldaps.CACert = ca
	for name, cfg := range map[string]config.LDAP{"starttls": starttls, "ldaps": ldaps} {
		d, err := read(cfg)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, s.log.String())
			continue
		}
		if _, err := d.Authenticate(context.Background(), directory.Credentials{User: "bob", Password: "bob-secret"}); err != nil {
			t.Errorf("%s: bob's password: %v", name, err)
		}
	}
	other := t.TempDir()
	otherCA := testCA(t, other)
	wrong := slapdLDAP(s.tls)
	wrong.CACert = otherCA
	if d, err := read(wrong); err == nil || d.Alarm() != directory.Alarm {
		t.Errorf("ldaps with another CA: read %v, alarm %q; want a certificate error", err, d.Alarm())
	}
}

// testCA writes ca.pem, and server.pem and server.key for 127.0.0.1
// signed by it, into dir; it returns ca.pem's path.
func testCA(t *testing.T, dir string) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "faxbox test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := func(name, typ string, b []byte) {
		write(t, filepath.Join(dir, name), string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})))
	}
	pemFile("ca.pem", "CERTIFICATE", caDER)
	pemFile("server.pem", "CERTIFICATE", der)
	pemFile("server.key", "PRIVATE KEY", keyDER)
	return filepath.Join(dir, "ca.pem")
}
