package asterisk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/inbox"
)

// keptManager answers DBGet, DBGetTree and CoreShowChannels from maps, as
// the box's Asterisk would.
type keptManager struct {
	kept map[string]string // uid → kept value
	up   []string          // Uniqueids of channels up
}

func (m keptManager) Action(context.Context, string, ...ami.Header) (ami.Message, error) {
	return nil, errors.New("unexpected action")
}

func (m keptManager) List(_ context.Context, name string, hs ...ami.Header) (ami.Message, []ami.Message, error) {
	ok := ami.Message{{Key: "Response", Value: "Success"}}
	switch name {
	case "DBGet":
		key := ami.Message(hs).Get("Key")
		v, found := m.kept[key]
		if !found {
			return ami.Message{{Key: "Response", Value: "Error"}}, nil, errors.New("ami: DBGet: Database entry not found")
		}
		return ok, []ami.Message{{{Key: "Event", Value: "DBGetResponse"}, {Key: "Key", Value: key}, {Key: "Val", Value: v}}}, nil
	case "DBGetTree":
		var items []ami.Message
		for k, v := range m.kept {
			items = append(items, ami.Message{{Key: "Event", Value: "DBGetTreeResponse"}, {Key: "Key", Value: "/faxbox-rx/" + k}, {Key: "Val", Value: v}})
		}
		return ok, items, nil
	case "CoreShowChannels":
		var items []ami.Message
		for _, u := range m.up {
			items = append(items, ami.Message{{Key: "Event", Value: "CoreShowChannel"}, {Key: "Uniqueid", Value: u}})
		}
		return ok, items, nil
	}
	return nil, nil, errors.New("unexpected list " + name)
}

func TestReceptionFromEvent(t *testing.T) {
	r := NewReceiver(keptManager{}, "/var/spool/asterisk/fax")
	m := ami.Message{{Key: "Event", Value: "UserEvent"}, {Key: "Channel", Value: "PJSIP/trunk-00000004"}, {Key: "Uniqueid", Value: "1796281539.4"},
		{Key: "UserEvent", Value: "FaxboxReceived"}, {Key: "Reception", Value: "1796281539.4"},
		{Key: "File", Value: "/var/spool/asterisk/fax/rx-1796281539.4.tif"}, {Key: "Status", Value: "SUCCESS"}, {Key: "Error", Value: "OK"},
		{Key: "StatusStr", Value: "OK"}, {Key: "Pages", Value: "3"}, {Key: "Rate", Value: "14400"}, {Key: "Resolution", Value: "8031x3850"},
		{Key: "ECM", Value: "yes"}, {Key: "Mode", Value: "T38"}, {Key: "CallerID", Value: "0301234567"}, {Key: "DID", Value: "530"},
		{Key: "Started", Value: "1796281539"}, {Key: "Ended", Value: "1796281565"}, {Key: "RemoteStationID", Value: "LAB REMOTE "},
		{Key: "RxChannel", Value: "PJSIP/trunk-00000004"}}
	rx, ok := r.Reception(m)
	want := inbox.Reception{UniqueID: "1796281539.4", File: "/var/spool/asterisk/fax/rx-1796281539.4.tif", Status: "SUCCESS", Error: "OK",
		StatusStr: "OK", Pages: 3, BitRate: 14400, Resolution: "8031x3850", ECM: true, Mode: "T38", RemoteStationID: "LAB REMOTE",
		CallerID: "0301234567", DID: "530", Channel: "PJSIP/trunk-00000004", Started: time.Unix(1796281539, 0), Ended: time.Unix(1796281565, 0)}
	if !ok || rx != want {
		t.Fatalf("Reception:\n got %+v\nwant %+v", rx, want)
	}
	// The file is where the dialplan writes it, whatever the event says;
	// a key that could leave the directory is refused.
	for _, uid := range []string{"../../etc/x", "a/b", "", "x\ny"} {
		bad := append(ami.Message(nil), m...)
		for i := range bad {
			if bad[i].Key == "Reception" {
				bad[i].Value = uid
			}
		}
		if _, ok := r.Reception(bad); ok {
			t.Errorf("reception key %q accepted", uid)
		}
	}
	if _, ok := r.Reception(ami.Message{{Key: "Event", Value: "UserEvent"}, {Key: "UserEvent", Value: "FaxboxResult"}}); ok {
		t.Error("a FaxboxResult taken for a reception")
	}
}

func TestKeptReceptions(t *testing.T) {
	m := keptManager{kept: map[string]string{
		"1.1": "SUCCESS|OK|3|14400|8031x3850|yes|T38|0301234567|530|1796281539|1796281565|LAB REMOTE|PJSIP/trunk-00000004|OK",
		"1.2": "FAILED|NO_FAX|0|||no|audio|0301|531|1796281600|1796281620||PJSIP/trunk-00000005|The call dropped prematurely",
		"1.3": "short|value",
	}, up: []string{"1.9"}}
	r := NewReceiver(m, "/rx")
	rx, ok := r.Kept(context.Background(), "1.1")
	if !ok || !rx.Kept || rx.Pages != 3 || rx.Mode != "T38" || rx.DID != "530" || rx.File != "/rx/rx-1.1.tif" ||
		rx.RemoteStationID != "LAB REMOTE" || rx.Ended != time.Unix(1796281565, 0) || rx.Channel != "PJSIP/trunk-00000004" {
		t.Fatalf("Kept(1.1) = %+v %v", rx, ok)
	}
	if _, ok := r.Kept(context.Background(), "1.3"); ok {
		t.Error("a malformed kept value was taken")
	}
	if _, ok := r.Kept(context.Background(), "9.9"); ok {
		t.Error("a missing key was found")
	}
	all, err := r.KeptAll(context.Background())
	if err != nil || len(all) != 2 {
		t.Fatalf("KeptAll: %d %v", len(all), err)
	}
	live, err := r.Live(context.Background())
	if err != nil || !live["1.9"] || len(live) != 1 {
		t.Fatalf("Live: %v %v", live, err)
	}
}

// originates records the Originate actions a Receiver sends.
type originates struct {
	keptManager
	sent []ami.Message
}

func (m *originates) Action(_ context.Context, name string, hs ...ami.Header) (ami.Message, error) {
	if name != "Originate" {
		return nil, errors.New("unexpected action " + name)
	}
	m.sent = append(m.sent, ami.Message(hs))
	return ami.Message{{Key: "Response", Value: "Success"}}, nil
}

// TestForget: recorded receptions' kept results are deleted through the
// faxbox-forget context, 50 keys per Local channel; a key that is not a
// reception's as the dialplan writes it is never sent.
func TestForget(t *testing.T) {
	m := &originates{}
	r := NewReceiver(m, "/var/spool/asterisk/fax")
	uids := []string{"1796281539.4", "../etc", "a\r\nAction: Command", "x&faxbox-result/fx_1", ""}
	for i := range 120 {
		uids = append(uids, fmt.Sprintf("1796281600.%d", i))
	}
	if err := r.Forget(context.Background(), uids...); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 3 {
		t.Fatalf("%d originates for 121 keys, want 3 (50 a channel)", len(m.sent))
	}
	var keys []string
	for _, o := range m.sent {
		if o.Get("Channel") != "Local/forget@faxbox-forget/n" || o.Get("Application") != "Wait" {
			t.Errorf("originate %v", o)
		}
		v, ok := strings.CutPrefix(o.Get("Variable"), "FAXBOX_FORGET=")
		if !ok {
			t.Fatalf("no FAXBOX_FORGET in %v", o)
		}
		keys = append(keys, strings.Split(v, "&")...)
	}
	if len(keys) != 121 || keys[0] != "faxbox-rx/1796281539.4" || keys[120] != "faxbox-rx/1796281600.119" {
		t.Fatalf("keys %d: first %q, last %q", len(keys), keys[0], keys[len(keys)-1])
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "faxbox-rx/17962816") && k != "faxbox-rx/1796281539.4" {
			t.Errorf("key %q sent", k)
		}
	}
	m.sent = nil
	if err := r.Forget(context.Background(), "../x"); err != nil || len(m.sent) != 0 {
		t.Fatalf("nothing valid to forget: %v, %d originates", err, len(m.sent))
	}
}
