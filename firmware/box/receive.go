package box

import (
	"context"
	"path/filepath"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/asterisk"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/receiving"
)

// receiveDir is where the box's Asterisk writes received faxes
// (asterisk.receive_dir, by default <spool_dir>/fax as services/ renders
// it).
func receiveDir(a *config.Asterisk) string {
	if a.ReceiveDir != "" {
		return a.ReceiveDir
	}
	spool := a.SpoolDir
	if spool == "" {
		spool = "/var/spool/asterisk"
	}
	return filepath.Join(spool, "fax")
}

// openReceiving builds the service that records received faxes from the
// manager connection's events (nil without Asterisk).
func (b *Box) openReceiving(cfg config.Config, client *ami.Client, router receiving.Router) {
	if client == nil || cfg.Asterisk == nil {
		return
	}
	b.rxDir = receiveDir(cfg.Asterisk)
	b.rx = receiving.New(receiving.Config{
		Store: b.Store, Source: asterisk.NewReceiver(client, b.rxDir), Bus: b.Bus, Enqueue: b.Sender.Enqueue,
		WebhookURL: cfg.Inbox.WebhookURL, Router: router, Clock: b.Clock, Log: b.Log,
	})
}

// watchReceived records what Asterisk received while faxbox was not
// listening: once the events flow (Recover's manager actions need the
// event reader) and again after every reconnect of the manager connection,
// until ctx ends.
func (b *Box) watchReceived(ctx context.Context) {
	rx, client := b.rx, b.ami
	if rx == nil {
		return
	}
	go func() {
		done := int64(-1) // the connection (by reconnect count) recovered last
		for {
			if n := client.Reconnects(); client.Connected() && n != done {
				done = n
				b.recoverReceived(ctx, rx)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

func (b *Box) recoverReceived(ctx context.Context, rx *receiving.Service) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	n, err := rx.Recover(ctx, b.rxDir)
	if err != nil {
		b.Log.Error("box: recover received faxes", "component", "receiving", "err", err)
		return
	}
	if n > 0 {
		b.Log.Info("box: received faxes recorded from what Asterisk left", "component", "receiving", "faxes", n)
	}
}

// purgeReceived deletes the documents of received faxes older than the
// retention period (records stay).
func (b *Box) purgeReceived() {
	if b.Cfg.Retention <= 0 {
		return
	}
	n, err := b.Store.PurgeReceived(b.Clock.Now().Add(-b.Cfg.Retention.D()))
	if err != nil {
		b.Log.Error("retention: purge received faxes", "component", "receiving", "err", err)
	} else if n > 0 {
		b.Log.Info("retention: purged received faxes' documents", "component", "receiving", "faxes", n)
	}
}

// startReceived starts the recovery watch (startEvents calls it once the
// events flow).
func (b *Box) startReceived() {
	if b.rx == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.rxStop = cancel
	b.watchReceived(ctx)
}

// closeReceived ends the recovery watch and waits for the receptions being
// recorded.
func (b *Box) closeReceived() {
	if b.rxStop != nil {
		b.rxStop()
	}
	if b.rx != nil {
		b.rx.Close()
	}
}
