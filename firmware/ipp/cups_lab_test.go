//go:build lab

package ipp_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ipp"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// ipptoolDir holds the test files Debian's cups-ipp-utils ships with ipptool.
const ipptoolDir = "/usr/share/cups/ipptool"

func printerURI(env *testbox.Env) string {
	return "ipp://" + strings.TrimPrefix(env.C.Base, "http://") + ipp.Path
}

// ipptool runs CUPS's ipptool; it fails the test unless every test of the
// file passed.
func ipptool(t *testing.T, args ...string) string {
	t.Helper()
	testkit.Require(t, "ipptool")
	out, err := exec.Command("ipptool", args...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("[PASS]")) || bytes.Contains(out, []byte("[FAIL]")) {
		t.Fatalf("ipptool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestIPPToolGetPrinterAttributes runs CUPS's own get-printer-attributes
// test against the box's FaxOut printer.
func TestIPPToolGetPrinterAttributes(t *testing.T) {
	env := testbox.Start(t, nil)
	out := ipptool(t, "-tv", printerURI(env), filepath.Join(ipptoolDir, "get-printer-attributes.test"))
	for _, want := range []string{"ipp-features-supported (keyword) = faxout", "destination-uri-schemes-supported (uriScheme) = tel"} {
		if !strings.Contains(out, want) {
			t.Errorf("ipptool output lacks %q", want)
		}
	}
}

// pdfFile writes a PDF of n pages made by ghostscript.
func pdfFile(t *testing.T, n int) string {
	path := filepath.Join(t.TempDir(), "letter.pdf")
	if err := os.WriteFile(path, testkit.PDF(t, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitDelivered waits for the box's only fax job, which must go to number
// and come from IPP, to be delivered.
func waitDelivered(t *testing.T, env *testbox.Env, number string, pages int) *job.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var jobs []job.Job
	for len(jobs) == 0 && time.Now().Before(deadline) {
		jobs = env.Jobs(t, job.KindFax)
		time.Sleep(100 * time.Millisecond)
	}
	if len(jobs) != 1 || jobs[0].To != number || !strings.HasPrefix(jobs[0].ClientRef, "ipp-") {
		t.Fatalf("the box's fax jobs: %+v", jobs)
	}
	j := env.C.WaitJob(t, "/v1/faxes/"+jobs[0].ID, job.Delivered, 60*time.Second, true)
	if j.Pages != pages {
		t.Errorf("%d pages delivered, want %d", j.Pages, pages)
	}
	return j
}

// TestIPPToolFaxJob runs CUPS's own FaxOut test (Create-Job with
// destination-uris, then Send-Document), its number changed to the test
// line's delivering one: the fax is delivered.
func TestIPPToolFaxJob(t *testing.T) {
	env := testbox.Start(t, nil)
	src, err := os.ReadFile(filepath.Join(ipptoolDir, "fax-job.test"))
	if err != nil {
		t.Fatal(err)
	}
	const theirs = "tel:4055551212"
	if !bytes.Contains(src, []byte(theirs)) {
		t.Fatalf("CUPS's fax-job.test no longer faxes %s:\n%s", theirs, src)
	}
	test := filepath.Join(t.TempDir(), "fax-job.test")
	os.WriteFile(test, bytes.ReplaceAll(src, []byte(theirs), []byte("tel:99990001")), 0o644)
	ipptool(t, "-t", "-f", pdfFile(t, 2), printerURI(env), test)
	waitDelivered(t, env, "99990001", 2)
}

// cupsd is a private CUPS scheduler run in the foreground for one test.
type cupsd struct {
	dir, server string
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCupsConfig writes cupsd's configuration: everything under dir,
// listening on server, no authentication, debug logging, files saved at once.
func writeCupsConfig(dir, server string) {
	files := fmt.Sprintf(`ServerRoot %[1]s/root
RequestRoot %[1]s/spool
TempDir %[1]s/spool/tmp
CacheDir %[1]s/cache
StateDir %[1]s/state
AccessLog %[1]s/log/access_log
ErrorLog %[1]s/log/error_log
PageLog %[1]s/log/page_log
ServerBin /usr/lib/cups
DataDir /usr/share/cups
User lp
Group lp
SystemGroup root
`, dir)
	conf := fmt.Sprintf(`LogLevel debug
Listen %s
Browsing No
DirtyCleanInterval 0
WebInterface No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
`, server)
	os.WriteFile(filepath.Join(dir, "root", "cups-files.conf"), []byte(files), 0o644)
	os.WriteFile(filepath.Join(dir, "root", "cupsd.conf"), []byte(conf), 0o644)
}

// startCupsd runs cupsd -f with its own configuration, spool and port; the
// test's end stops it and removes its files.
func startCupsd(t *testing.T) *cupsd {
	testkit.Require(t, "cupsd", "lpadmin", "lp", "lpstat")
	if os.Geteuid() != 0 {
		t.Fatal("cupsd runs its filters as user lp: the test needs root")
	}
	lp, err := user.LookupGroup("lp")
	if err != nil {
		t.Fatalf("group lp (made by Debian's cups package): %v", err)
	}
	gid, _ := strconv.Atoi(lp.Gid)
	dir, err := os.MkdirTemp("", "faxbox-cupsd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &cupsd{dir: dir, server: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	for path, mode := range map[string]os.FileMode{"": 0o755, "root": 0o755, "log": 0o755, "state": 0o755, "spool": 0o710, "spool/tmp": 0o1770, "cache": 0o770} {
		p := filepath.Join(dir, path)
		os.MkdirAll(p, mode)
		os.Chmod(p, mode)
		if path == "spool" || path == "spool/tmp" || path == "cache" {
			os.Chown(p, 0, gid)
		}
	}
	writeCupsConfig(dir, c.server)
	log, _ := os.Create(filepath.Join(dir, "log", "cupsd.out"))
	cmd := exec.Command("cupsd", "-f", "-c", filepath.Join(dir, "root", "cupsd.conf"), "-s", filepath.Join(dir, "root", "cups-files.conf"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if out, _ := exec.Command("lpstat", "-h", c.server, "-r").Output(); bytes.Contains(out, []byte("is running")) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cupsd did not come up on %s:\n%s", c.server, c.log())
		}
	}
}

// errorLog is cupsd's whole error_log.
func (c *cupsd) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "log", "error_log"))
	return string(b)
}

// log is cupsd's output and the end of its error_log, for failure messages.
func (c *cupsd) log() string {
	a, _ := os.ReadFile(filepath.Join(c.dir, "log", "cupsd.out"))
	b, _ := os.ReadFile(filepath.Join(c.dir, "log", "error_log"))
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	return string(a) + string(b)
}

// run runs a CUPS client command against the scheduler.
func (c *cupsd) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, append([]string{"-h", c.server}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, c.log())
	}
	return string(out)
}

// TestCupsdQueue prints to a real CUPS queue made for the box with
// `lpadmin -m everywhere`: CUPS's ipp backend turns `lp -o phone=NUMBER`
// into destination-uris (tel:NUMBER), and the fax is delivered.
func TestCupsdQueue(t *testing.T) {
	env := testbox.Start(t, nil)
	c := startCupsd(t)
	c.run(t, "lpadmin", "-p", "fax", "-v", printerURI(env), "-m", "everywhere", "-E")
	// cupsd makes the queue's PPD from the box's printer attributes after
	// lpadmin returns.
	var ppd []byte
	for deadline := time.Now().Add(20 * time.Second); !bytes.Contains(ppd, []byte("*cupsFilter2")); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no everywhere PPD for the queue:\n%s\n%s", ppd, c.log())
		}
		ppd, _ = os.ReadFile(filepath.Join(c.dir, "root", "ppd", "fax.ppd"))
	}
	if !bytes.Contains(ppd, []byte("application/pdf")) {
		t.Fatalf("the everywhere PPD sends no PDF:\n%s", ppd)
	}
	out := c.run(t, "lp", "-d", "fax", "-o", "phone=9999-0001", pdfFile(t, 3))
	if !strings.Contains(out, "request id is fax-1") {
		t.Fatalf("lp: %s", out)
	}
	waitDelivered(t, env, "99990001", 3)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if out := c.run(t, "lpstat", "-W", "completed", "-o", "fax"); strings.Contains(out, "fax-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CUPS never saw fax-1 completed:\n%s", c.log())
		}
	}
	// The backend logs what it sent ("Faxing to phone …; destination-uri:
	// tel:…"); cupsd has the job's log lines only at log level debug.
	if m := regexp.MustCompile(`destination-uri: tel:[0-9-]+`).FindString(c.errorLog()); strings.ReplaceAll(m, "-", "") != "destinationuri: tel:99990001" {
		t.Errorf("CUPS's ipp backend sent %q, not destination-uris tel:99990001:\n%s", m, c.log())
	}
}
