package box

import (
	"context"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/gpio"
	rx "github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/panel"
)

// TestPanelShowsUnreadFaxes: received faxes nobody has read light the
// inbox LED and take the LCD's first row; marked read through the API,
// both go back.
func TestPanelShowsUnreadFaxes(t *testing.T) {
	e := startBox(t, nil)
	leds := &fakeLEDs{leds: map[string]panel.Pattern{}, presses: make(chan gpio.Press, 4)}
	screen := &fakeScreen{keys: make(chan string, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.box.RunPanel(ctx, panel.New(2, 16), leds, screen, PanelHooks{})
	screen.waitFor(t, "faxbox ", 5*time.Second)
	if p := leds.get("inbox"); p != panel.Off {
		t.Errorf("inbox LED with an empty inbox: %s", p)
	}
	var ids []rx.ID
	for i, src := range []string{"u1", "u2"} {
		f := &rx.Fax{ID: rx.NewID(), Source: src, Status: rx.Received, Pages: 1, CreatedAt: time.Now()}
		if _, err := e.box.Store.PutReceived(f, false); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
		screen.waitFor(t, panel.UnreadRow(i+1), 5*time.Second)
	}
	if p := leds.get("inbox"); p != panel.SlowBlink {
		t.Errorf("inbox LED with 2 unread faxes: %s", p)
	}
	for _, id := range ids {
		if r := e.c.Do(t, "POST", "/v1/inbox/"+string(id)+"/read", nil, "", nil); r.StatusCode != 200 {
			t.Fatalf("mark read: HTTP %d", r.StatusCode)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); leds.get("inbox") != panel.Off; {
		if time.Now().After(deadline) {
			t.Fatalf("inbox LED after reading: %s", leds.get("inbox"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
