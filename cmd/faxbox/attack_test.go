package main

import (
	"bufio"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// Black-box attacks on a running faxbox process with its default limits:
// the real binary, a fresh data directory, 127.0.0.1 (an address the
// classic endpoint admits without a token).

const attackToken = "attack-token-1"

// startAttackBox builds and starts faxbox with the default configuration
// (and a token); it returns the process and its base URL.
func startAttackBox(t *testing.T) (*proc, string) {
	t.Helper()
	bin := buildFaxbox(t)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	cfg := filepath.Join(t.TempDir(), "faxbox.json")
	if err := os.WriteFile(cfg, []byte(`{"tokens": ["`+attackToken+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startProc(t, bin, "serve", "-config", cfg, "-data", t.TempDir(), "-listen", addr)
	waitHealthy(t, "http://"+addr, p)
	return p, "http://" + addr
}

// fieldFlood writes a /faxservice/ body with n unknown 1000-byte fields
// before the file, as the attack in the issue did.
func fieldFlood(w *io.PipeWriter, n int) string {
	mw := multipart.NewWriter(w)
	go func() {
		for _, f := range [][2]string{{"fax", "99990001"}, {"faxId", "flood"}, {"returnUrl", "http://192.0.2.7/r"}} {
			mw.WriteField(f[0], f[1])
		}
		pad := strings.Repeat("x", 1000)
		for i := 0; i < n; i++ {
			if err := mw.WriteField(fmt.Sprintf("junk%05d", i), pad); err != nil {
				w.CloseWithError(err)
				return
			}
		}
		fw, _ := mw.CreateFormFile("file", "a.txt")
		fw.Write([]byte("hello\n"))
		w.CloseWithError(mw.Close())
	}()
	return mw.FormDataContentType()
}

// TestAttackFieldFloodMemory: 8 concurrent /faxservice/ posts of 20,000
// unknown 1000-byte fields each (about 21 MB each, the attack) keep
// faxbox's resident peak (VmHWM) under 64 MB; they took it from 14 MB to
// 356 MB before. The box still takes a fax afterwards.
func TestAttackFieldFloodMemory(t *testing.T) {
	const bound = 64 << 10 // kB
	p, base := startAttackBox(t)
	pid := p.cmd.Process.Pid
	before := testkit.ProcStatusKB(t, pid, "VmRSS")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", base+"/faxservice/", pr)
			req.Header.Set("Content-Type", fieldFlood(pw, 20000))
			resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
			pr.CloseWithError(io.ErrClosedPipe)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	peak := testkit.ProcStatusKB(t, pid, "VmHWM")
	t.Logf("RSS before %d kB, peak under the attack %d kB (bound %d kB)", before, peak, bound)
	if peak >= bound {
		t.Errorf("resident peak %d kB under the field flood; the bound is %d kB", peak, bound)
	}
	var out map[string]string
	(&testkit.Client{Base: base}).Submit(t, "/faxservice/", &out, testkit.Field("fax", "99990001"), testkit.Field("faxId", "after-1"),
		testkit.Field("returnUrl", "http://192.0.2.7/r"), testkit.File("file", "a.txt", []byte("after the attack\n")))
	if out["status"] != "success" {
		t.Fatalf("a fax after the attack: %v\n%s", out, p.log)
	}
}

// TestAttackSlowBodies: 25 connections trickling 10 bytes/s into
// /faxservice/ are all answered and closed within 25 s (limits.body_timeout
// 10 s, then the minimum rate; uploads waiting for a slot get 503 after
// 5 s). Before, all were still open after 60 s.
func TestAttackSlowBodies(t *testing.T) {
	_, base := startAttackBox(t)
	addr := strings.TrimPrefix(base, "http://")
	const n = 25
	closed := make(chan time.Duration, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /faxservice/ HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n", addr)
		go func() {
			// Trickle 10 bytes/s until the server closes the connection.
			for range time.Tick(100 * time.Millisecond) {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		go func() {
			io.Copy(io.Discard, c)
			closed <- time.Since(start)
		}()
	}
	deadline := time.After(25 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case d := <-closed:
			if i == n-1 {
				t.Logf("all %d slow connections closed after %s", n, d.Round(time.Millisecond))
			}
		case <-deadline:
			t.Fatalf("%d of %d connections trickling 10 bytes/s are still open after 25 s", n-i, n)
		}
	}
}

// dialTinyWindow connects with a 4 KB receive buffer and a 536-byte MSS, so
// that the kernel buffers little of what the server sends a client that does
// not read.
func dialTinyWindow(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.Dial("tcp", addr)
}

// TestAttackSSENeverReads: a /v1/events client that never reads is dropped
// once its events stop reaching it (each write has a 10 s deadline); before,
// it held its connection and subscription forever. A 4 KB receive window
// makes 60 jobs' events more than the kernel buffers.
func TestAttackSSENeverReads(t *testing.T) {
	t.Parallel() // its own faxbox process; the longest test here
	p, base := startAttackBox(t)
	addr := strings.TrimPrefix(base, "http://")
	c, err := dialTinyWindow(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, attackToken)
	// Jobs on the test line make events; the client reads none of them.
	api := &testkit.Client{Base: base, Token: attackToken}
	for i := 0; i < 60; i++ {
		var j job.Job
		if r := api.Submit(t, "/v1/faxes", &j, testkit.File("file", "a.txt", []byte(fmt.Sprintf("event maker %d\n", i))),
			testkit.Field("to", "99990001"), testkit.Field("header", strings.Repeat("h", 100))); r.StatusCode != 202 {
			t.Fatalf("submit %d: %d", i, r.StatusCode)
		}
	}
	// The last event is written when the last job is delivered; a blocked
	// write gives up 10 s later at the latest.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var list struct{ Items []job.Job }
		api.Do(t, "GET", "/v1/faxes?status=delivered&limit=500", nil, "", &list)
		if len(list.Items) == 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 60 jobs delivered after 2 minutes", len(list.Items))
		}
	}
	time.Sleep(12 * time.Second)
	// Now drain what the kernel holds: a dropped stream ends (EOF); a live
	// one goes on and the read times out.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, bufio.NewReader(c))
	if err != nil {
		t.Fatalf("the stream of a client that read nothing is still open 12 s after the last event (%d bytes buffered): %v\n%s", n, err, p.log)
	}
	t.Logf("dropped; %d bytes were buffered", n)
}
