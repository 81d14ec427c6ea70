// Command faxbox-lab sets up the Asterisk chroot and starts or stops the
// lab's two Asterisk instances (box and remote) by hand.
//
//	faxbox-lab setup
//	faxbox-lab up [-name lab] [-base-port 15060] [-share DIR]...   (stays in the foreground; Ctrl-C stops)
//	faxbox-lab down [-name lab]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/faxbox/faxbox/tools/lab"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: faxbox-lab setup | up | down")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	name := fs.String("name", "lab", "lab name")
	base := fs.Int("base-port", 15060, "first port")
	cfgOut := fs.String("config-out", "", "write a faxbox config file wired to the lab here (up)")
	data := fs.String("data", "", "faxbox data directory to share and to write into the config (up)")
	var share multi
	fs.Var(&share, "share", "host directory Asterisk must read at the same path (repeatable)")
	fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *data != "" {
		abs, err := filepath.Abs(*data)
		if err != nil {
			fail(err)
		}
		*data = abs
		share = append(share, abs)
	}
	opts := lab.Options{Name: *name, BasePort: *base, Share: share, Log: os.Stderr}
	switch os.Args[1] {
	case "setup":
		if err := lab.Setup(ctx, os.Stderr); err != nil {
			fail(err)
		}
	case "up":
		l, err := lab.Up(ctx, opts)
		if err != nil {
			fail(err)
		}
		b, err := l.RunConfig(*data)
		if err != nil {
			l.Down()
			fail(err)
		}
		if *cfgOut != "" {
			if err := os.WriteFile(*cfgOut, b, 0o600); err != nil {
				l.Down()
				fail(err)
			}
		} else {
			fmt.Printf("%s\n", b)
		}
		fmt.Fprintln(os.Stderr, "lab running; Ctrl-C or `faxbox-lab down` stops it")
		<-ctx.Done()
		l.Down()
	case "down":
		dir := filepath.Join("/tmp/faxbox-lab", *name)
		for _, inst := range []string{"box", "remote"} {
			i := &lab.Instance{Name: inst, Dir: filepath.Join(dir, inst)}
			i.Stop()
		}
		lab.Unshare(dir)
		for _, d := range share {
			lab.Unshare(d)
		}
		lab.Unmount()
		fmt.Fprintln(os.Stderr, "lab down")
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "faxbox-lab:", err)
	os.Exit(1)
}
