package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/services"
)

// Options for Up.
type Options struct {
	// Name tells labs apart (directories); several may run side by side
	// with different BasePorts.
	Name string
	// BasePort: box SIP = base, remote SIP = base+1, box AMI = base+2,
	// remote AMI = base+3, RTP and UDPTL ranges from base+100.
	BasePort int
	// Dir holds the instances (default /tmp/faxbox-lab/<name>).
	Dir string
	// Share lists host directories (faxbox's data directory) Asterisk must
	// read at the same path.
	Share []string
	// Channels of the box's trunk line group.
	Channels int
	// Log receives progress; nil discards it.
	Log io.Writer
	// Tune adjusts the faxbox configuration the box's Asterisk is rendered
	// from (and that FaxboxConfig returns), e.g. the callback number.
	Tune func(*config.Config)
	// Relay puts the impairing media relay between the box and the remote
	// (Lab.Relay; see impair.go), its random decisions seeded by
	// RelaySeed. It needs root (an nftables rule).
	Relay     bool
	RelaySeed uint64
}

// Lab is a running pair of Asterisk instances.
type Lab struct {
	Opts   Options
	Box    *Instance
	Remote *Instance
	// Received is the host directory where the remote stores faxes.
	Received string
	// Relay impairs the media between box and remote (Options.Relay).
	Relay *Relay

	shared []string
	stop   chan struct{}
	wg     sync.WaitGroup
}

// AMI credentials of the box's least-privilege user (rendered) and of the
// remote's lab-only admin user.
const (
	BoxAMIUser      = "faxbox"
	BoxAMISecret    = "faxbox-lab-secret"
	RemoteAMIUser   = "lab"
	RemoteAMISecret = "lab-admin-secret"
	TrunkName       = "trunk"
	// ReceiveDIDs are the numbers on the trunk the box receives faxes on.
	ReceiveDIDs = "500-599"
)

// Up sets up the chroot if needed, then starts the box and the remote.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if o.Name == "" {
		o.Name = "lab"
	}
	if o.BasePort == 0 {
		o.BasePort = 15060
	}
	if o.Dir == "" {
		o.Dir = filepath.Join("/tmp/faxbox-lab", o.Name)
	}
	if o.Channels == 0 {
		o.Channels = 4
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := Setup(ctx, o.Log); err != nil {
		return nil, err
	}
	l := Attach(o)
	if err := reservePorts(l.Opts.BasePort, l.Opts.BasePort+portSpan-1); err != nil {
		return nil, err
	}
	os.RemoveAll(l.Received) // faxes of an earlier run
	l.Box.kill()
	l.Remote.kill()
	for _, d := range append([]string{o.Dir}, o.Share...) {
		if err := Share(d); err != nil {
			l.Down()
			return nil, err
		}
		l.shared = append(l.shared, d)
	}
	if err := l.writeRemote(); err != nil {
		l.Down()
		return nil, err
	}
	if o.Relay {
		if err := l.startRelay(ctx); err != nil {
			l.Down()
			return nil, err
		}
	}
	if _, err := services.RenderTo(l.FaxboxConfig(config.Default()), filepath.Join(l.Box.Dir, "etc")); err != nil {
		l.Down()
		return nil, err
	}
	for _, i := range []*Instance{l.Remote, l.Box} {
		if err := i.Start(ctx); err != nil {
			l.Down()
			return nil, err
		}
	}
	if err := l.waitTrunk(ctx); err != nil {
		l.Down()
		return nil, err
	}
	l.wg.Add(1)
	go l.watch105()
	fmt.Fprintf(o.Log, "lab %s up: box AMI %s (user %s), remote AMI %s, received faxes in %s\n", o.Name, l.Box.AMIAddr(), BoxAMIUser, l.Remote.AMIAddr(), l.Received)
	return l, nil
}

// Attach describes the lab o names (Name, BasePort, Dir as for Up)
// without starting anything: for commands that act on a lab already up
// (faxbox-lab send).
func Attach(o Options) *Lab {
	if o.Name == "" {
		o.Name = "lab"
	}
	if o.BasePort == 0 {
		o.BasePort = 15060
	}
	if o.Dir == "" {
		o.Dir = filepath.Join("/tmp/faxbox-lab", o.Name)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	b := o.BasePort
	l := &Lab{Opts: o, stop: make(chan struct{}),
		Box: &Instance{Name: o.Name + "-box", Dir: filepath.Join(o.Dir, "box"), SIPPort: b, AMIPort: b + 2,
			RTPStart: b + 100, UDPTLStart: b + 300, AMIUser: BoxAMIUser, AMISecret: BoxAMISecret},
		Remote: &Instance{Name: o.Name + "-remote", Dir: filepath.Join(o.Dir, "remote"), SIPPort: b + 1, AMIPort: b + 3,
			RTPStart: b + 200, UDPTLStart: b + 400, AMIUser: RemoteAMIUser, AMISecret: RemoteAMISecret},
	}
	l.Received = filepath.Join(l.Remote.Dir, "rx")
	return l
}

// waitTrunk waits until the box sees the remote as reachable (qualify).
func (l *Lab) waitTrunk(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := l.Box.CLI("pjsip show contacts")
		if strings.Contains(out, "Avail") {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	out, _ := l.Box.CLI("pjsip show contacts")
	return fmt.Errorf("lab: the box's trunk to the remote never became available:\n%s", out)
}

// Down stops both instances and removes the bind mounts.
func (l *Lab) Down() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.Box.Stop()
	l.Remote.Stop()
	l.stopRelay()
	for i := len(l.shared) - 1; i >= 0; i-- {
		Unshare(l.shared[i])
	}
	l.shared = nil
}

// FaxboxConfig returns base with the asterisk section and the trunk line
// group pointing at this lab's box instance.
func (l *Lab) FaxboxConfig(base config.Config) config.Config {
	base.Asterisk = l.asteriskFor(l.Box, l.Remote)
	base.LineGroups = []config.LineGroup{{Name: TrunkName, Channels: l.Opts.Channels, Transport: "ami", Dial: "PJSIP/%s@" + TrunkName}}
	base.Webhook.AllowLoopback = true // the lab's receivers run on this machine
	// The remote sends faxes to these (Send).
	base.Inbox.DIDs = []string{ReceiveDIDs}
	if l.Opts.Tune != nil {
		l.Opts.Tune(&base)
	}
	return base
}

// asteriskFor describes instance i, with a trunk to peer.
func (l *Lab) asteriskFor(i, peer *Instance) *config.Asterisk {
	d := i.Dir
	return &config.Asterisk{
		AMIAddr: i.AMIAddr(), AMIUser: i.AMIUser, AMISecret: i.AMISecret,
		ConfigDir: filepath.Join(d, "etc"), SpoolDir: filepath.Join(d, "spool"), RunDir: filepath.Join(d, "run"),
		LogDir: filepath.Join(d, "log"), DBDir: filepath.Join(d, "db"), ReceiveDir: filepath.Join(d, "rx"),
		User: "root", BindAddr: "127.0.0.1", SIPPort: i.SIPPort, AMIPort: i.AMIPort,
		RTPStart: i.RTPStart, RTPEnd: i.RTPStart + 99, UDPTLStart: i.UDPTLStart, UDPTLEnd: i.UDPTLStart + 99,
		Trunk: &config.Trunk{Name: TrunkName, Host: "127.0.0.1:" + strconv.Itoa(peer.SIPPort), T38: true, Channels: l.Opts.Channels, Qualify: 2},
	}
}

// Calls returns how many calls the remote received for number.
func (l *Lab) Calls(number string) (int, error) {
	out, err := l.Remote.CLI("database show faxlab-calls")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "/faxlab-calls/"+number+"-") {
			n++
		}
	}
	return n, nil
}

// ReceivedFiles lists the TIFFs the remote received for number.
func (l *Lab) ReceivedFiles(number string) []string {
	m, _ := filepath.Glob(filepath.Join(l.Received, number+"-*.tif"))
	sort.Strings(m)
	return m
}

var concise = regexp.MustCompile(`^([^!]+)!from-box!n105!`)

// watch105 makes number 105 hang up right after the first page of a job's
// first call: it watches the file being received and, once it holds one
// complete page, hangs the channel up through the remote's CLI.
func (l *Lab) watch105() {
	defer l.wg.Done()
	done := map[string]bool{}
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		files, _ := filepath.Glob(filepath.Join(l.Received, "105first-*.tif"))
		for _, f := range files {
			if done[f] {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if pf, err := tiff.Parse(b); err != nil || len(pf.Pages) < 1 {
				continue
			}
			// The receiver has page 1; the sender counts it once the
			// confirmation (MCF) is through: hang up during page 2.
			select {
			case <-l.stop:
				return
			case <-time.After(2500 * time.Millisecond):
			}
			out, _ := l.Remote.CLI("core show channels concise")
			for _, line := range strings.Split(out, "\n") {
				if m := concise.FindStringSubmatch(line); m != nil {
					l.Remote.CLI("channel request hangup " + m[1])
				}
			}
			done[f] = true
		}
	}
}

// CallBox makes the remote call number on the box with caller id callerID
// (through the remote's manager interface).
func (l *Lab) CallBox(ctx context.Context, number, callerID string) error {
	c, err := ami.Dial(ctx, ami.Config{Addr: l.Remote.AMIAddr(), Username: RemoteAMIUser, Secret: RemoteAMISecret})
	if err != nil {
		return err
	}
	defer c.Close()
	go func() {
		for range c.Events() {
		}
	}()
	_, err = c.Action(ctx, "Originate", ami.Header{Key: "Channel", Value: "PJSIP/" + number + "@box"},
		ami.Header{Key: "CallerID", Value: "<" + callerID + ">"}, ami.Header{Key: "Application", Value: "Wait"},
		ami.Header{Key: "Data", Value: "5"}, ami.Header{Key: "Async", Value: "true"})
	return err
}
