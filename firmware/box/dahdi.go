package box

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/config"
)

// groupDowner takes channels of a line group out of service
// (engine.Engine.SetGroupDown).
type groupDowner interface {
	SetGroupDown(group string, n int) error
}

// lister runs a list action (ami.Client.List).
type lister interface {
	List(context.Context, string, ...ami.Header) (ami.Message, []ami.Message, error)
}

// lineCards follows the DAHDI line cards' state from AMI: the channel list
// (DAHDIShowChannels) on every manager connect and FullyBooted, then Alarm, AlarmClear,
// SpanAlarm, SpanAlarmClear and DNDState events. After each change it tells
// the engine how many channels of every DAHDI line group are down, and the
// panel shows the line card alarm while any channel or span is in alarm.
type lineCards struct {
	cfg   dahdi.Config
	state *dahdi.State
	log   *slog.Logger

	mu     sync.Mutex
	lister lister      // the manager connection, once connected
	lines  groupDowner // nil until the engine exists
	groups []string    // the DAHDI line groups the engine dials on
}

func newLineCards(cfg dahdi.Config, groups []string, log *slog.Logger) *lineCards {
	return &lineCards{cfg: cfg, state: dahdi.NewState(), groups: groups, log: log}
}

// load reads every channel's state (on each manager connect: events while
// disconnected are lost).
func (c *lineCards) load(ctx context.Context, client lister) {
	c.mu.Lock()
	c.lister = client
	c.mu.Unlock()
	_, items, err := client.List(ctx, "DAHDIShowChannels")
	if err != nil {
		c.log.Warn("dahdi: channel list", "err", err)
		return
	}
	c.state.Load(items)
	c.apply()
}

// handle takes one AMI event; it reports whether the event was DAHDI's.
// FullyBooted (Asterisk finished loading: chan_dahdi is there now, and
// sends it right after every login) reads the channel list again.
func (c *lineCards) handle(m ami.Message) bool {
	switch m.Event() {
	case "FullyBooted":
		c.mu.Lock()
		l := c.lister
		c.mu.Unlock()
		if l != nil {
			go c.load(context.Background(), l)
		}
		return false
	case "Alarm", "AlarmClear", "SpanAlarm", "SpanAlarmClear", "DNDState":
		c.state.Handle(m)
		c.apply()
		return true
	}
	return false
}

// attach hands the engine over and applies what is known.
func (c *lineCards) attach(lines groupDowner) {
	c.mu.Lock()
	c.lines = lines
	c.mu.Unlock()
	c.apply()
}

func (c *lineCards) apply() {
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

// alarms lists the channels and spans in alarm.
func (c *lineCards) alarms() []string { return c.state.Alarms() }

// dahdiLineCards returns the line card follower for the DAHDI line groups
// among groups (those that dial DAHDI/…), or nil when there are none.
func (b *Box) dahdiLineCards(cfg config.Config, groups []config.LineGroup, log *slog.Logger) *lineCards {
	if cfg.DAHDI == nil {
		return nil
	}
	dg, err := dahdi.LineGroups(*cfg.DAHDI)
	if err != nil {
		return nil // config.Load refused it already
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
	b.cards = newLineCards(*cfg.DAHDI, names, log)
	return b.cards
}
