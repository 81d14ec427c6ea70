// Command faxbox-lab sets up the Asterisk chroot and starts or stops the
// lab's two Asterisk instances (box and remote) by hand.
//
//	faxbox-lab setup
//	faxbox-lab up [-name lab] [-base-port 15060] [-share DIR]...   (stays in the foreground; Ctrl-C stops)
//	faxbox-lab down [-name lab]
//	faxbox-lab up -relay [-seed N] [-to-box SPEC] [-to-remote SPEC] ...   (the media through the impairing relay)
//	faxbox-lab impair [-name lab] [-to-box SPEC] [-to-remote SPEC]   (change a running relay's impairments; none: print its counts)
//	faxbox-lab send -to DID [-g711] [-hangup-after N] [-caller DIGITS] [-station ID] [-name lab] [-base-port 15060] FILE
//
// send makes the lab's remote fax FILE (PDF, TIFF, PNG, JPEG or text) to the
// box over the trunk, T.38 unless -g711; -hangup-after N hangs up once the
// box has confirmed N pages (a partial reception). The box receives on
// DIDs 500-599.
//
// With -relay the remote's media passes a userspace UDP relay that impairs
// each direction, seeded (-seed): SPEC is comma-separated loss=PCT,
// burst=PCT:LEN (a loss burst starts at PCT% of datagrams, LEN long on
// average), reorder=PCT, dup=PCT, delay=DUR, jitter=DUR, maxsize=OCTETS,
// only=udptl|rtp; e.g. -to-box loss=5,only=udptl. It needs root (an
// nftables rule, Debian's nftables).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/faxbox/faxbox/tools/lab"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: faxbox-lab setup | up | down | send | impair")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	name := fs.String("name", "lab", "lab name")
	base := fs.Int("base-port", 15060, "first port")
	cfgOut := fs.String("config-out", "", "write a faxbox config file wired to the lab here (up)")
	data := fs.String("data", "", "faxbox data directory to share and to write into the config (up)")
	var share multi
	fs.Var(&share, "share", "host directory Asterisk must read at the same path (repeatable)")
	var send lab.SendOptions
	fs.StringVar(&send.To, "to", "", "number on the box to send to (send; 500-599 receive)")
	fs.BoolVar(&send.G711, "g711", false, "send as G.711 audio, without T.38 (send)")
	fs.IntVar(&send.HangupAfter, "hangup-after", 0, "hang up once the box confirmed this many pages (send)")
	fs.StringVar(&send.CallerID, "caller", "", "caller id digits (send; default 0301234567)")
	fs.StringVar(&send.StationID, "station", "", "station id (send; default LAB REMOTE)")
	relay := fs.Bool("relay", false, "put the impairing media relay between box and remote (up; needs root and nft)")
	seed := fs.Uint64("seed", 1, "seed of the relay's random decisions (up -relay)")
	var imp lab.ImpairRequest
	fs.StringVar(&imp.ToBox, "to-box", "", "impairment of the media to the box, e.g. loss=5,only=udptl (up -relay, impair)")
	fs.StringVar(&imp.ToRemote, "to-remote", "", "impairment of the media to the remote (up -relay, impair)")
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
	opts := lab.Options{Name: *name, BasePort: *base, Share: share, Log: os.Stderr, Relay: *relay, RelaySeed: *seed}
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
		if l.Relay != nil {
			if err := l.Relay.Apply(imp); err != nil {
				l.Down()
				fail(err)
			}
			go l.ServeRelayControl(ctx)
		}
		fmt.Fprintln(os.Stderr, "lab running; Ctrl-C or `faxbox-lab down` stops it")
		<-ctx.Done()
		l.Down()
	case "send":
		if fs.NArg() != 1 || send.To == "" {
			fail(fmt.Errorf("usage: faxbox-lab send -to DID [-g711] [-hangup-after N] FILE"))
		}
		send.File = fs.Arg(0)
		res, err := lab.Attach(opts).Send(ctx, send)
		if err != nil {
			fail(err)
		}
		fmt.Printf("sent %s to %s: call %s ended after %s", send.File, send.To, res.Channel, res.Duration.Round(time.Second))
		if res.HungUp {
			fmt.Printf(", hung up after %d confirmed pages", res.PagesConfirmed)
		}
		fmt.Println()
	case "impair":
		if err := impair(lab.Attach(opts).Opts.Dir, imp, fs); err != nil {
			fail(err)
		}
	case "down":
		dir := filepath.Join("/tmp/faxbox-lab", *name)
		for _, inst := range []string{"box", "remote"} {
			i := &lab.Instance{Name: inst, Dir: filepath.Join(dir, inst)}
			i.Stop()
		}
		lab.Unshare(dir)
		lab.RemoveRelayRule(*name)
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

// impair changes the running relay's impairments (when -to-box or
// -to-remote is given) or prints its counts.
func impair(dir string, q lab.ImpairRequest, fs *flag.FlagSet) error {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "to-box" || f.Name == "to-remote" })
	if set {
		if err := lab.RequestImpair(dir, q); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "requested; the relay applies it within a second and restarts its counts")
		return nil
	}
	c, err := lab.ReadRelayCounts(dir)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	fmt.Println(string(b))
	return nil
}
