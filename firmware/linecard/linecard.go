// Package linecard follows the box's DAHDI line cards through Asterisk's
// manager interface and takes the channels they cannot use out of their
// line groups. The channel and span bookkeeping is dahdi.State's; this
// package feeds it from AMI (the DAHDIShowChannels list on every manager
// connect and FullyBooted, then the Alarm, AlarmClear, SpanAlarm,
// SpanAlarmClear and DNDState events) and after every change tells the
// engine how many channels of each DAHDI line group are down.
package linecard

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/config"
)

// Lines takes channels of a line group out of service
// (engine.Engine.SetGroupDown).
type Lines interface {
	SetGroupDown(group string, n int) error
}

// Lister runs a list action (ami.Client.List).
type Lister interface {
	List(ctx context.Context, action string, headers ...ami.Header) (ami.Message, []ami.Message, error)
}

// Cards follows the line cards of one box. It is safe for concurrent use.
type Cards struct {
	cfg    dahdi.Config
	groups []string // the DAHDI line groups the engine dials on
	state  *dahdi.State
	log    *slog.Logger

	mu     sync.Mutex
	lister Lister // the manager connection, once connected
	lines  Lines  // nil until Attach
}

// New returns the follower of the DAHDI line groups among groups (those
// that dial DAHDI/… and that cfg.DAHDI's spans make), or nil when there
// are none (no DAHDI hardware, or no line group dials on it).
func New(cfg config.Config, groups []config.LineGroup, log *slog.Logger) *Cards {
	if cfg.DAHDI == nil {
		return nil
	}
	dg, err := dahdi.LineGroups(*cfg.DAHDI)
	if err != nil {
		return nil // config.Validate refused it already
	}
	var names []string
	for _, d := range dg {
		for _, g := range groups {
			if g.Name == d.Name && strings.HasPrefix(g.Dial, "DAHDI/") {
				names = append(names, g.Name)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cards{cfg: *cfg.DAHDI, groups: names, state: dahdi.NewState(), log: log.With("component", "linecard")}
}

// Groups returns the names of the line groups c follows.
func (c *Cards) Groups() []string { return append([]string(nil), c.groups...) }

// Load reads every channel's state through l and remembers l for the
// reloads FullyBooted asks for. Call it on each manager connect: events
// sent while disconnected are lost. A failed list is logged; the state
// stays as it was.
func (c *Cards) Load(ctx context.Context, l Lister) {
	c.mu.Lock()
	c.lister = l
	c.mu.Unlock()
	_, items, err := l.List(ctx, "DAHDIShowChannels")
	if err != nil {
		c.log.Warn("dahdi: channel list", "err", err)
		return
	}
	c.state.Load(items)
	c.apply()
}

// Handle takes one AMI event and reports whether it was DAHDI's (the
// caller then need not hand it on). FullyBooted (Asterisk finished loading:
// chan_dahdi is there now; Asterisk also sends it right after every login)
// reads the channel list again in the background and is reported as not
// handled, so others see it too.
func (c *Cards) Handle(m ami.Message) bool {
	switch m.Event() {
	case "FullyBooted":
		c.mu.Lock()
		l := c.lister
		c.mu.Unlock()
		if l != nil {
			go c.Load(context.Background(), l)
		}
		return false
	case "Alarm", "AlarmClear", "SpanAlarm", "SpanAlarmClear", "DNDState":
		c.state.Handle(m)
		c.apply()
		return true
	}
	return false
}

// Attach hands over the lines to take down (the engine, which exists only
// after the manager connection) and applies what is known already.
func (c *Cards) Attach(lines Lines) {
	c.mu.Lock()
	c.lines = lines
	c.mu.Unlock()
	c.apply()
}

// Alarms lists the channels and spans in alarm, sorted
// ("channel 2: Red Alarm", "span 1: Red Alarm"); empty when all is well.
func (c *Cards) Alarms() []string { return c.state.Alarms() }

// apply sets every followed line group's down count (0 when nothing is
// down), once the lines are attached.
func (c *Cards) apply() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lines == nil {
		return
	}
	down := c.state.Down(c.cfg)
	for _, g := range c.groups {
		if err := c.lines.SetGroupDown(g, down[g]); err != nil {
			c.log.Warn("dahdi: line group", "group", g, "err", err)
		}
	}
}
