package asterisk

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/inbox"
)

// keptFamily is the AstDB family the receive context keeps its results in
// (services/: faxbox-rx/<uniqueid> = status|error|pages|rate|resolution|
// ecm|mode|callerid|did|start|end|station|channel|statusstr).
const keptFamily = "faxbox-rx"

const keptFields = 14

// reUID is a reception key as the dialplan writes it (FILTERed Uniqueid).
var reUID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Receiver reads what the box's receive context reports: the
// FaxboxReceived events, the results kept in AstDB, and which receptions
// still have a channel up. It implements receiving.Source.
type Receiver struct {
	c Manager
	// dir is the receive directory (asterisk.receive_dir), where the
	// dialplan writes rx-<uniqueid>.tif.
	dir string
}

// NewReceiver returns a Receiver asking manager c; dir is the receive
// directory.
func NewReceiver(c Manager, dir string) *Receiver { return &Receiver{c: c, dir: dir} }

// File returns the TIFF path of reception uid.
func (r *Receiver) File(uid string) string { return filepath.Join(r.dir, "rx-"+uid+".tif") }

// Reception returns the reception m reports when m is a FaxboxReceived
// event. A reception whose key or file is not what the dialplan writes
// (another directory, a path with ..) is refused.
func (r *Receiver) Reception(m ami.Message) (inbox.Reception, bool) {
	if m.Event() != "UserEvent" || m.Get("UserEvent") != "FaxboxReceived" {
		return inbox.Reception{}, false
	}
	uid := m.Get("Reception")
	if !reUID.MatchString(uid) || strings.Contains(uid, "..") {
		return inbox.Reception{}, false
	}
	rx := inbox.Reception{
		UniqueID: uid, File: r.File(uid), Status: m.Get("Status"), Error: m.Get("Error"), StatusStr: m.Get("StatusStr"),
		Pages: atoi(m.Get("Pages")), BitRate: atoi(m.Get("Rate")), Resolution: m.Get("Resolution"),
		ECM: m.Get("ECM") == "yes", Mode: m.Get("Mode"), RemoteStationID: strings.TrimSpace(m.Get("RemoteStationID")),
		CallerID: m.Get("CallerID"), DID: m.Get("DID"), Channel: m.Get("RxChannel"),
		Started: epoch(m.Get("Started")), Ended: epoch(m.Get("Ended")),
	}
	return rx, true
}

// Kept returns the result the dialplan kept in AstDB for reception uid,
// if there is one (the FaxboxReceived event was lost: faxbox or its
// manager connection was down when the call ended).
func (r *Receiver) Kept(ctx context.Context, uid string) (inbox.Reception, bool) {
	if !reUID.MatchString(uid) {
		return inbox.Reception{}, false
	}
	_, items, err := r.c.List(ctx, "DBGet", ami.Header{Key: "Family", Value: keptFamily}, ami.Header{Key: "Key", Value: uid})
	if err != nil || len(items) == 0 {
		return inbox.Reception{}, false
	}
	return r.parseKept(uid, items[0].Get("Val"))
}

// KeptAll returns every result kept in AstDB (DBGetTree), receptions
// without a TIFF (no page arrived) included.
func (r *Receiver) KeptAll(ctx context.Context) ([]inbox.Reception, error) {
	_, items, err := r.c.List(ctx, "DBGetTree", ami.Header{Key: "Family", Value: keptFamily})
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "not found") || strings.Contains(strings.ToLower(err.Error()), "no database") {
			return nil, nil // an empty family
		}
		return nil, fmt.Errorf("asterisk: kept receptions: %w", err)
	}
	var out []inbox.Reception
	for _, it := range items {
		uid := strings.TrimPrefix(it.Get("Key"), "/"+keptFamily+"/")
		if rx, ok := r.parseKept(uid, it.Get("Val")); ok {
			out = append(out, rx)
		}
	}
	return out, nil
}

// forgetBatch bounds the keys one Forget call deletes with one Local
// channel (the list is a channel variable).
const forgetBatch = 50

// Forget deletes the results kept in AstDB for receptions uids, so later
// starts do not list them again. faxbox's manager user has no system class
// (no DBDel), so it originates Local/forget@faxbox-forget with the keys in
// FAXBOX_FORGET, and the box's dialplan deletes them before it answers.
// Keys that are not a reception's as the dialplan writes them are left
// out.
func (r *Receiver) Forget(ctx context.Context, uids ...string) error {
	var keys []string
	for _, uid := range uids {
		if reUID.MatchString(uid) && !strings.Contains(uid, "..") {
			keys = append(keys, keptFamily+"/"+uid)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), forgetBatch)
		_, err := r.c.Action(ctx, "Originate",
			ami.Header{Key: "Channel", Value: "Local/forget@faxbox-forget/n"},
			ami.Header{Key: "Application", Value: "Wait"}, ami.Header{Key: "Data", Value: "0"},
			ami.Header{Key: "Timeout", Value: "10000"},
			ami.Header{Key: "Variable", Value: "FAXBOX_FORGET=" + strings.Join(keys[:n], "&")})
		if err != nil {
			return fmt.Errorf("asterisk: forget %d kept receptions: %w", n, err)
		}
		keys = keys[n:]
	}
	return nil
}

func (r *Receiver) parseKept(uid, val string) (inbox.Reception, bool) {
	f := strings.SplitN(val, "|", keptFields)
	if len(f) != keptFields || !reUID.MatchString(uid) || strings.Contains(uid, "..") {
		return inbox.Reception{}, false
	}
	return inbox.Reception{
		UniqueID: uid, File: r.File(uid), Status: f[0], Error: f[1], Pages: atoi(f[2]), BitRate: atoi(f[3]),
		Resolution: f[4], ECM: f[5] == "yes", Mode: f[6], CallerID: f[7], DID: f[8],
		Started: epoch(f[9]), Ended: epoch(f[10]), RemoteStationID: strings.TrimSpace(f[11]), Channel: f[12],
		StatusStr: f[13], Kept: true,
	}, true
}

// Live returns the Uniqueids of the channels up now.
func (r *Receiver) Live(ctx context.Context) (map[string]bool, error) {
	_, items, err := r.c.List(ctx, "CoreShowChannels")
	if err != nil {
		return nil, fmt.Errorf("asterisk: channels: %w", err)
	}
	up := map[string]bool{}
	for _, m := range items {
		up[m.Get("Uniqueid")] = true
	}
	return up, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

// epoch reads ${EPOCH} (seconds); zero when empty or malformed.
func epoch(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}
