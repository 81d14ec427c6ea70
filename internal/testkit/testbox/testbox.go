// Package testbox starts a real faxbox (box.Open and Serve on 127.0.0.1) for
// end-to-end tests outside package box. It lives apart from testkit because
// package box's own tests use testkit and box cannot be imported there.
package testbox

import (
	"context"
	"net"
	"net/http"
	"sync"
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
	Box  *box.Box
	C    *testkit.Client
	Dir  string   // the data directory
	Addr net.Addr // where the box serves
	// Stop ends Serve and closes the box; it runs when the test ends, and
	// may be called before (again is a no-op).
	Stop func()
}

// Start runs a box on a fresh data directory with the default configuration
// changed by mod (test line only, fast pages, 127.0.0.1 allowed on the
// compatibility endpoints); it stops when the test ends.
func Start(t *testing.T, mod func(*config.Config)) *Env {
	t.Helper()
	return StartWith(t, Options{Config: mod})
}

// Options changes the box StartWith runs; the zero value is Start's box.
type Options struct {
	// Config changes the configuration after Start's own settings.
	Config func(*config.Config)
	// Before runs with the final configuration before the box opens (to
	// seed its data directory, say).
	Before func(config.Config)
	// Box is what box.Open gets; its Version is "test" when empty.
	Box box.Options
	// Listen is the address Serve listens on; "127.0.0.1:0" when empty.
	Listen string
	// Ready, when set, is polled every 10 ms once Serve runs, until it
	// holds; the test fails when it does not within 5 s.
	Ready func(*box.Box) bool
}

// StartWith runs a box as Start does, changed by o; it stops when the test
// ends.
func StartWith(t *testing.T, o Options) *Env {
	t.Helper()
	testkit.Require(t, "gs")
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Tokens = []string{Token}
	cfg.TestLine.PageTime = job.Duration(50 * time.Millisecond)
	cfg.Compat.AllowIPs = []string{"127.0.0.1/32"}
	if o.Config != nil {
		o.Config(&cfg)
	}
	if o.Before != nil {
		o.Before(cfg)
	}
	if o.Box.Version == "" {
		o.Box.Version = "test"
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	b, err := box.Open(context.Background(), cfg, o.Box)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done; b.Close() }) }
	t.Cleanup(stop)
	for i := 0; o.Ready != nil && !o.Ready(b); i++ {
		if i > 500 {
			t.Fatal("testbox: the box was not ready within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	base := "http://" + ln.Addr().String()
	return &Env{Box: b, C: &testkit.Client{Base: base, Token: Token}, Dir: cfg.DataDir, Addr: ln.Addr(), Stop: stop}
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
