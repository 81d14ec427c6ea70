package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A lab brought up with its relay by `faxbox-lab up -relay` is impaired at
// run time by `faxbox-lab impair`, through two files in the lab's
// directory: the request (written by impair, read by up every 500 ms) and
// the relay's counts (written by up every second).
const (
	relayRequestFile = "relay-request.json"
	relayCountsFile  = "relay-counts.json"
)

// ImpairRequest sets both directions' impairments (ParseImpairment's form).
type ImpairRequest struct {
	ToBox    string `json:"to_box"`
	ToRemote string `json:"to_remote"`
}

// RelayCounts are the relay's counts per direction and media kind.
type RelayCounts map[string]map[string]Counts

// Apply sets the impairments of q on the relay.
func (r *Relay) Apply(q ImpairRequest) error {
	toBox, err := ParseImpairment(q.ToBox)
	if err != nil {
		return err
	}
	toRemote, err := ParseImpairment(q.ToRemote)
	if err != nil {
		return err
	}
	r.Set(ToBox, toBox)
	r.Set(ToRemote, toRemote)
	return nil
}

// AllCounts returns every direction's and kind's counts.
func (r *Relay) AllCounts() RelayCounts {
	out := RelayCounts{}
	for _, d := range []Direction{ToRemote, ToBox} {
		out[d.String()] = map[string]Counts{}
		for _, k := range []MediaKind{KindRTP, KindUDPTL} {
			out[d.String()][k.String()] = r.Counts(d, k)
		}
	}
	return out
}

// RequestImpair asks the relay of the lab in dir for q (checked first).
func RequestImpair(dir string, q ImpairRequest) error {
	if _, err := ParseImpairment(q.ToBox); err != nil {
		return err
	}
	if _, err := ParseImpairment(q.ToRemote); err != nil {
		return err
	}
	b, _ := json.Marshal(q)
	tmp := filepath.Join(dir, relayRequestFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("lab: write the relay request: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, relayRequestFile))
}

// ReadRelayCounts reads the counts the relay of the lab in dir last wrote.
func ReadRelayCounts(dir string) (RelayCounts, error) {
	b, err := os.ReadFile(filepath.Join(dir, relayCountsFile))
	if err != nil {
		return nil, fmt.Errorf("lab: no relay counts (is `faxbox-lab up -relay` running?): %w", err)
	}
	var c RelayCounts
	return c, json.Unmarshal(b, &c)
}

// ServeRelayControl applies the requests `faxbox-lab impair` writes and
// writes the relay's counts, until ctx ends.
func (l *Lab) ServeRelayControl(ctx context.Context) {
	dir := l.Opts.Dir
	req := filepath.Join(dir, relayRequestFile)
	os.Remove(req)
	var seen time.Time
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if fi, err := os.Stat(req); err == nil && fi.ModTime() != seen {
			seen = fi.ModTime()
			var q ImpairRequest
			b, _ := os.ReadFile(req)
			err := json.Unmarshal(b, &q)
			if err == nil {
				err = l.Relay.Apply(q)
			}
			if err != nil {
				fmt.Fprintf(l.Opts.Log, "lab %s: relay request: %v\n", l.Opts.Name, err)
			} else {
				fmt.Fprintf(l.Opts.Log, "lab %s: relay now to-box %q, to-remote %q (counts restarted)\n", l.Opts.Name, q.ToBox, q.ToRemote)
			}
		}
		if n%2 == 1 {
			b, _ := json.MarshalIndent(l.Relay.AllCounts(), "", "  ")
			os.WriteFile(filepath.Join(dir, relayCountsFile), b, 0o644)
		}
	}
}
