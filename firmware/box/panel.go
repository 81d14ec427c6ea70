package box

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/events"
	"github.com/faxbox/faxbox/firmware/gpio"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/panel"
	"github.com/faxbox/faxbox/firmware/routing"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/firmware/trunk"
)

// LEDs is the panel's light and button hardware (gpio.Panel).
type LEDs interface {
	Show(map[string]panel.Pattern)
	Presses() <-chan gpio.Press
	Missing() []string
}

// Screen is the panel's display and keypad (lcd.Display).
type Screen interface {
	Draw(rows []string) error
	Keys() <-chan string
}

// PanelHooks are actions the box cannot do by itself.
type PanelHooks struct {
	// ResetNetwork restores the network settings to defaults (reset button
	// held 10 s).
	ResetNetwork func()
	// SelfTest starts the loopback self-test.
	SelfTest func()
}

// RunPanel makes the front panel follow the box until ctx ends: it redraws on
// every job and line change (the box's event stream) and once a second, and
// turns buttons and keys into actions on the engine.
func (b *Box) RunPanel(ctx context.Context, p *panel.Panel, leds LEDs, screen Screen, hooks PanelHooks) {
	sub := b.Bus.Subscribe(1024)
	defer func() { sub.Close() }() // the current one: it is replaced when it falls behind
	last := ""
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var presses <-chan gpio.Press
	var keys <-chan string
	if leds != nil {
		presses = leds.Presses()
	}
	if screen != nil {
		keys = screen.Keys()
	}
	redraw := func() {
		out := p.Update(b.panelInput(leds, last))
		if leds != nil {
			leds.Show(out.LEDs)
		}
		if screen != nil {
			screen.Draw(out.Screen)
		}
	}
	act := func(ev panel.Event) {
		for _, a := range p.Handle(ev, b.panelInput(leds, last)) {
			b.panelAction(a, hooks)
		}
		redraw()
	}
	redraw()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				sub = b.Bus.Subscribe(1024)
				continue
			}
			if j, isJob := e.Value.(*job.Job); isJob && j.Status.Terminal() {
				last = fmt.Sprintf("%s %s", j.To, j.Status)
				if j.Error != nil {
					last += " " + string(j.Error.Code)
				}
			}
			redraw()
		case <-tick.C:
			redraw()
		case pr := <-presses:
			button, line, _ := strings.Cut(pr.Button, ":")
			act(panel.Event{Button: button, Line: line, Long: pr.Long})
		case k := <-keys:
			act(panel.Event{Key: k})
		}
	}
}

// panelInput gathers what the panel shows.
func (b *Box) panelInput(leds LEDs, last string) panel.Input {
	in := panel.Input{LastResult: last, IP: localIP(), Alarms: b.alarms(leds), SelfTest: b.selfTestSummary()}
	for _, l := range b.Engine.Lines() {
		in.Lines = append(in.Lines, panel.Line{ID: l.ID().String(), State: string(l.State), JobID: l.JobID, To: l.To, Page: l.Page, Pages: l.Pages})
	}
	in.QueueDepth = b.Engine.Stats().Active
	if n, err := b.Store.CountUnread(); err == nil {
		in.Unread = n // the inbox LED and the status screen's first row
	}
	return in
}

// alarms lists the conditions that light the alarm LED (leds: the panel's
// hardware, nil when there is none).
func (b *Box) alarms(leds LEDs) []panel.Alarm {
	var out []panel.Alarm
	if b.ami != nil && !b.ami.Connected() {
		out = append(out, panel.AsteriskDown)
	}
	if used, err := b.Store.DiskUsed(); err == nil && used > 0.9 {
		out = append(out, panel.DiskFull)
	}
	if time.Now().Year() < 2024 {
		out = append(out, panel.TimeNotSet)
	}
	if b.trunk != nil && b.trunk.State() == trunk.Unreachable {
		out = append(out, panel.TrunkDown)
	}
	if b.cards != nil && len(b.cards.Alarms()) > 0 {
		out = append(out, panel.LineCardAlarm)
	}
	if asterisk.DocumentProblem(b.asterisk) != "" {
		out = append(out, panel.Alarm(asterisk.DocumentAlarm))
	}
	if b.directory != nil && b.directory.Alarm() != "" {
		out = append(out, panel.Alarm(directory.Alarm))
	}
	if b.learned != nil && b.learned.Alarm() {
		out = append(out, panel.T38Unhealthy)
	}
	if b.routingAlarm() {
		out = append(out, panel.Alarm(routing.Alarm))
	}
	if leds != nil && len(leds.Missing()) > 0 {
		out = append(out, panel.HardwareFault)
	}
	return out
}

// panelAction carries out an operator's request.
func (b *Box) panelAction(a panel.Action, hooks PanelHooks) {
	log := b.Log.With("panel", a.Kind, "line", a.Line)
	switch a.Kind {
	case "cancel_line":
		for _, l := range b.Engine.Lines() {
			if l.ID().String() == a.Line && l.JobID != "" {
				if _, err := b.Engine.Cancel(l.JobID); err != nil {
					log.Warn("panel: cancel", "job", l.JobID, "err", err)
				}
			}
		}
	case "set_busy":
		id, err := job.ParseLineID(a.Line)
		if err == nil {
			err = b.Engine.SetLineBusy(id, a.Busy)
		}
		if err != nil {
			log.Warn("panel: make busy", "err", err)
		}
	case "retry_failed":
		since := b.Clock.Now().Add(-24 * time.Hour)
		for _, kind := range []job.Kind{job.KindFax, job.KindCall} {
			items, _, err := b.Store.List(store.Filter{Kind: kind, Status: job.Failed, Since: since, Limit: 500})
			if err != nil {
				log.Warn("panel: retry", "err", err)
				continue
			}
			for _, j := range items {
				b.Engine.Retry(j.ID)
			}
		}
	case "reset_network":
		if hooks.ResetNetwork != nil {
			hooks.ResetNetwork()
		} else {
			b.resetNetwork()
		}
	case "self_test":
		if hooks.SelfTest != nil {
			hooks.SelfTest()
		} else {
			b.selfTest()
		}
	}
	b.Bus.Publish(events.Status, map[string]string{"panel_action": a.Kind, "line": a.Line})
}

// localIP is the address shown on the LCD.
func localIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "?"
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "no address"
}

// resetNetwork runs panel.reset_command (the reset button held 10 s). The
// outcome is logged and shown as the panel's last result.
func (b *Box) resetNetwork() {
	log := b.Log.With("component", "panel")
	argv := b.Cfg.Panel.ResetCommand
	if len(argv) == 0 {
		log.Error("panel: network reset requested, but panel.reset_command is not configured")
		b.Bus.Publish(events.Status, map[string]string{"panel_result": "network reset not configured"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	result := "network reset done"
	if err != nil {
		result = "network reset failed"
		log.Error("panel: network reset", "cmd", argv, "err", err, "output", string(out))
	} else {
		log.Info("panel: network settings reset", "cmd", argv)
	}
	b.Bus.Publish(events.Status, map[string]string{"panel_result": result})
}

// selfTest starts the self-test (StartSelfTest); the LCD's Self-test
// item shows how it goes.
func (b *Box) selfTest() {
	log := b.Log.With("component", "panel")
	run, err := b.StartSelfTest()
	if err != nil {
		log.Warn("panel: self-test", "err", err)
		return
	}
	log.Info("panel: self-test started", "job", run.JobID, "path", run.Path)
}
