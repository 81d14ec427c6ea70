// Package testbox starts a real faxbox (box.Open and Serve on 127.0.0.1) for
// end-to-end tests outside package box. It lives apart from testkit because
// package box's own tests use testkit and box cannot be imported there.
package testbox

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// Token is the API token of every box Start makes.
const Token = "testbox-token-1"

// Env is a running box and a client holding its token.
type Env struct {
	Box *box.Box
	C   *testkit.Client
	Dir string // the data directory
}

// Start runs a box on a fresh data directory with the default configuration
// changed by mod (test line only, fast pages, 127.0.0.1 allowed on the
// compatibility endpoints); it stops when the test ends.
func Start(t *testing.T, mod func(*config.Config)) *Env {
	t.Helper()
	testkit.Require(t, "gs")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Tokens = []string{Token}
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	cfg.Compat.AllowIPs = []string{"127.0.0.1/32"}
	if mod != nil {
		mod(&cfg)
	}
	b, err := box.Open(context.Background(), cfg, box.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; b.Close() })
	return &Env{Box: b, C: &testkit.Client{Base: "http://" + ln.Addr().String(), Token: Token}, Dir: cfg.DataDir}
}

// Jobs returns every stored job of kind (job.KindFax or job.KindCall), up
// to 500.
func (e *Env) Jobs(t *testing.T, kind job.Kind) []job.Job {
	t.Helper()
	path := map[job.Kind]string{job.KindFax: "/v1/faxes", job.KindCall: "/v1/calls"}[kind]
	if path == "" {
		t.Fatalf("testbox: no job kind %q", kind)
	}
	var list struct{ Items []job.Job }
	if resp := e.C.Do(t, "GET", path+"?limit=500", nil, "", &list); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return list.Items
}
