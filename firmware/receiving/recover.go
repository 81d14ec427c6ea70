package receiving

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/inbox"
)

// Recover records what Asterisk left while faxbox was not running or its
// manager connection was down: every rx-<uniqueid>.tif in the receive
// directory dir and every result kept in AstDB without a record — from the
// kept result when there is one, else from the TIFF alone (Asterisk stopped
// during the call). Receptions whose channel is still up are left to their
// event. Kept results of receptions recorded already are forgotten (a
// Forgetter source). It then routes again every fax whose routing did not
// finish. It returns how many faxes it recorded.
func (s *Service) Recover(ctx context.Context, dir string) (int, error) {
	live, err := s.cfg.Source.Live(ctx)
	if err != nil {
		return 0, fmt.Errorf("receiving: recover: %w", err)
	}
	kept, err := s.cfg.Source.KeptAll(ctx)
	if err != nil {
		s.log.Warn("receiving: recover: the kept results could not be listed; only the receive directory is scanned", "err", err)
	}
	since := s.since()
	byUID := map[string]inbox.Reception{}
	var done []string // recorded already: their kept results are forgotten
	for _, rx := range kept {
		if _, err := os.Stat(rx.File); err != nil && rx.Ended.Before(since) {
			// One without its TIFF from before this data directory
			// received anything was recorded elsewhere (or is from
			// before faxbox forgot the results it recorded).
			done = append(done, rx.UniqueID)
			continue
		}
		byUID[rx.UniqueID] = rx
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rx-*.tif"))
	for _, f := range files {
		uid := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "rx-"), ".tif")
		if _, ok := byUID[uid]; ok {
			continue
		}
		if rx, ok := s.cfg.Source.Kept(ctx, uid); ok {
			byUID[uid] = rx
			continue
		}
		rx := inbox.Reception{UniqueID: uid, File: s.cfg.Source.File(uid)}
		if fi, err := os.Stat(f); err == nil {
			rx.Ended = fi.ModTime()
		}
		byUID[uid] = rx
	}
	uids := make([]string, 0, len(byUID))
	for uid := range byUID {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	n := 0
	for _, uid := range uids {
		if live[uid] {
			continue // still receiving: its event follows
		}
		rx := byUID[uid]
		if _, recorded := s.cfg.Store.ReceivedSource(uid); recorded {
			s.removeSource(rx)
			done = append(done, uid)
			continue
		}
		f, err := s.Record(ctx, rx, true)
		if err != nil {
			s.forget(ctx, done...)
			return n, err
		}
		if f != nil {
			n++
		}
	}
	s.forget(ctx, done...)
	s.reroute(ctx)
	return n, nil
}

// stateName is the store state of the service: since when this data
// directory records receptions.
const stateName = "receiving"

type state struct {
	Since time.Time `json:"since"`
}

// since returns when this data directory began to record receptions,
// noting now on the first call.
func (s *Service) since() time.Time {
	var st state
	if ok, err := s.cfg.Store.GetState(stateName, &st); ok && err == nil {
		return st.Since
	}
	// A reception that ended just before the first start still counts.
	st.Since = s.cfg.Clock.Now().Add(-time.Minute)
	if err := s.cfg.Store.PutState(stateName, st); err != nil {
		s.log.Warn("receiving: note the first start", "err", err)
	}
	return st.Since
}

// reroute routes the faxes whose routing did not finish.
func (s *Service) reroute(ctx context.Context) {
	if s.cfg.Router == nil {
		return
	}
	ids, err := s.cfg.Store.Unrouted()
	if err != nil {
		s.log.Error("receiving: unrouted faxes", "err", err)
		return
	}
	for _, id := range ids {
		f, err := s.cfg.Store.GetReceived(id)
		if err != nil {
			continue
		}
		s.route(ctx, f)
	}
}
