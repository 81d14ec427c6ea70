package lab

import (
	"encoding/json"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/destctl"
)

// Destinations are the destination controls `make run`'s configuration
// declares for the remote's numbers: 107, a fax server, takes 4 calls at
// once; jobs to 108, a one-line machine, go in batches of up to 10.
func Destinations() []destctl.Rule {
	return []destctl.Rule{
		{Prefix: "107", MaxConcurrent: 4},
		{Prefix: "108", MaxBatch: 10},
	}
}

// RunConfig is the faxbox configuration file `make run` starts the box
// with: the asterisk section and line group wired to this lab, the lab's
// destinations, callbacks to loopback allowed (the lab's receivers run on
// this machine), the trunk's numbers 500-599 receiving faxes, and dataDir as data_dir unless it is "". It has no token:
// `make run` passes one with -token.
func (l *Lab) RunConfig(dataDir string) ([]byte, error) {
	cfg := l.FaxboxConfig(config.Default())
	run := map[string]any{
		"asterisk":     cfg.Asterisk,
		"line_groups":  cfg.LineGroups,
		"destinations": Destinations(),
		"webhook":      map[string]bool{"allow_loopback": cfg.Webhook.AllowLoopback},
		"inbox":        map[string][]string{"dids": cfg.Inbox.DIDs},
	}
	if dataDir != "" {
		run["data_dir"] = dataDir
	}
	return json.MarshalIndent(run, "", "  ")
}
