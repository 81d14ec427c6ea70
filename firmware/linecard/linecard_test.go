package linecard

import (
	"bufio"
	"context"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/linecard/linecardtest"
)

// boxConfig is a box with one 4-port FXO card making line group "pstn" and
// a SIP trunk group, resolved as config.Load does.
func boxConfig(t *testing.T) config.Config {
	t.Helper()
	c := config.Default()
	c.Asterisk = &config.Asterisk{AMIAddr: "127.0.0.1:5038", AMIUser: "faxbox", AMISecret: "s3cretpass", SpoolDir: t.TempDir()}
	c.LineGroups = []config.LineGroup{{Name: "sip", Channels: 2, Dial: "PJSIP/%s@trunk"}}
	c.DAHDI = &dahdi.Config{Spans: []dahdi.Span{{Type: "fxo", First: 1, Channels: 4, Group: 1, LineGroup: "pstn"}}}
	if err := c.ResolveDAHDI(); err != nil {
		t.Fatal(err)
	}
	return c
}

// event parses a raw AMI event as the manager connection does.
func event(t *testing.T, raw string) ami.Message {
	t.Helper()
	m, err := ami.Parse(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dial connects a real manager client to f; it closes when the test ends.
func dial(t *testing.T, f *linecardtest.AMI) *ami.Client {
	t.Helper()
	c, err := ami.Dial(context.Background(), ami.Config{Addr: f.Addr(), Username: "faxbox", Secret: "s3cretpass"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lines records the engine's down counts per group.
type lines struct {
	mu   sync.Mutex
	down map[string]int
	sets int
}

func (l *lines) SetGroupDown(group string, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down == nil {
		l.down = map[string]int{}
	}
	l.down[group] = n
	l.sets++
	return nil
}

func (l *lines) get() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.down), l.sets
}

// TestNewFollowsOnlyDAHDIGroups: only line groups that dial DAHDI/ on the
// configured spans are followed; without DAHDI hardware or such a group
// there is nothing to follow.
func TestNewFollowsOnlyDAHDIGroups(t *testing.T) {
	c := boxConfig(t)
	cards := New(c, c.LineGroups, nil)
	if cards == nil || !reflect.DeepEqual(cards.Groups(), []string{"pstn"}) {
		t.Fatalf("groups %v, want [pstn]", cards.Groups())
	}
	if got := New(c, c.LineGroups[:1], nil); got != nil {
		t.Fatalf("only the SIP group: following %v, want nil", got.Groups())
	}
	noCard := c
	noCard.DAHDI = nil
	if got := New(noCard, c.LineGroups, nil); got != nil {
		t.Fatalf("no DAHDI hardware: following %v, want nil", got.Groups())
	}
	sipNamed := c
	sipNamed.LineGroups = []config.LineGroup{{Name: "pstn", Channels: 1, Dial: "PJSIP/%s@trunk"}}
	if got := New(sipNamed, sipNamed.LineGroups, nil); got != nil {
		t.Fatalf("group pstn dialling SIP: following %v, want nil", got.Groups())
	}
}

// TestAlarmsTakeLinesDown: the channel list read on connect is applied once
// the engine is attached (not before); alarm, span alarm, DND and clear
// events change the down count of the DAHDI group only, and Alarms lists
// what is in alarm.
func TestAlarmsTakeLinesDown(t *testing.T) {
	c := boxConfig(t)
	cards := New(c, c.LineGroups, nil)
	cards.Load(context.Background(), dial(t, linecardtest.NewAMI(t, linecardtest.Options{})))
	if got := cards.Alarms(); !reflect.DeepEqual(got, []string{"channel 2: Red Alarm"}) {
		t.Fatalf("alarms after load: %v", got)
	}
	var l lines
	cards.Attach(&l)
	want := func(step string, down int, alarms ...string) {
		t.Helper()
		got, _ := l.get()
		if !reflect.DeepEqual(got, map[string]int{"pstn": down}) {
			t.Fatalf("%s: down %v, want pstn %d only", step, got, down)
		}
		if a := cards.Alarms(); strings.Join(a, "|") != strings.Join(alarms, "|") {
			t.Fatalf("%s: alarms %v, want %v", step, a, alarms)
		}
	}
	want("attached", 1, "channel 2: Red Alarm")
	steps := []struct {
		raw    string
		down   int
		alarms []string
	}{
		{"Event: SpanAlarm\r\nPrivilege: system,all\r\nSpan: 1\r\nAlarm: Red Alarm\r\n", 4, []string{"channel 2: Red Alarm", "span 1: Red Alarm"}},
		{"Event: SpanAlarmClear\r\nPrivilege: system,all\r\nSpan: 1\r\n", 1, []string{"channel 2: Red Alarm"}},
		{"Event: AlarmClear\r\nPrivilege: system,all\r\nDAHDIChannel: 2\r\n", 0, nil},
		{"Event: DNDState\r\nPrivilege: system,all\r\nDAHDIChannel: 3\r\nStatus: enabled\r\n", 1, nil},
		{"Event: Alarm\r\nPrivilege: system,all\r\nDAHDIChannel: 4\r\nAlarm: Yellow Alarm\r\n", 2, []string{"channel 4: Yellow Alarm"}},
		{"Event: DNDState\r\nPrivilege: system,all\r\nDAHDIChannel: 3\r\nStatus: disabled\r\n", 1, []string{"channel 4: Yellow Alarm"}},
	}
	for _, s := range steps {
		m := event(t, s.raw)
		if !cards.Handle(m) {
			t.Fatalf("%s not handled", m.Event())
		}
		want(m.Event(), s.down, s.alarms...)
	}
	for _, raw := range []string{"Event: Newchannel\r\nChannel: DAHDI/1-1\r\n", "Event: ContactStatus\r\nAOR: trunk\r\nContactStatus: Unreachable\r\n"} {
		if m := event(t, raw); cards.Handle(m) {
			t.Fatalf("%s reported as DAHDI's", m.Event())
		}
	}
}

// TestFullyBootedReadsChannelsAgain: the list fails while chan_dahdi is not
// loaded yet (nothing changes); FullyBooted, arriving on the manager
// connection's event stream, reads it again, is left for others to see too,
// and the channel in alarm goes down.
func TestFullyBootedReadsChannelsAgain(t *testing.T) {
	c := boxConfig(t)
	cards := New(c, c.LineGroups, nil)
	var l lines
	cards.Attach(&l)
	f := linecardtest.NewAMI(t, linecardtest.Options{NotBooted: true})
	client := dial(t, f)
	cards.Load(context.Background(), client)
	if got, _ := l.get(); got["pstn"] != 0 || len(cards.Alarms()) != 0 || f.Lists() != 0 {
		t.Fatalf("after a failed list: down %v, alarms %v, %d lists", got, cards.Alarms(), f.Lists())
	}
	passed := make(chan string, 16)
	go func() {
		for m := range client.Events() {
			if !cards.Handle(m) {
				passed <- m.Event()
			}
		}
	}()
	f.Boot()
	select {
	case ev := <-passed:
		if ev != "FullyBooted" {
			t.Fatalf("passed on %s, want FullyBooted", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FullyBooted reported as handled (or never came): the diallers would not see it")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := l.get(); got["pstn"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			got, _ := l.get()
			t.Fatalf("after FullyBooted: down %v, want pstn 1", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := cards.Alarms(); !reflect.DeepEqual(got, []string{"channel 2: Red Alarm"}) || f.Lists() != 1 {
		t.Fatalf("after FullyBooted: alarms %v, %d lists", got, f.Lists())
	}
}

// TestFullyBootedBeforeConnect: without a manager connection yet there is
// nothing to read from; FullyBooted changes nothing.
func TestFullyBootedBeforeConnect(t *testing.T) {
	c := boxConfig(t)
	cards := New(c, c.LineGroups, nil)
	var l lines
	cards.Attach(&l)
	_, before := l.get()
	cards.Handle(event(t, "Event: FullyBooted\r\nStatus: Fully Booted\r\n"))
	time.Sleep(50 * time.Millisecond)
	if got, sets := l.get(); sets != before || got["pstn"] != 0 {
		t.Fatalf("FullyBooted before connect: down %v (%d sets, %d before)", got, sets, before)
	}
}
