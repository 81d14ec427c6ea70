package asterisk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/faxbox/faxbox/firmware/dialler"
	"github.com/faxbox/faxbox/firmware/failure"
)

// DocumentAlarm is the alarm the box shows while its Asterisk cannot read
// the documents faxbox hands it (see DocumentProblem).
const DocumentAlarm = "asterisk cannot read documents"

// recheckEvery is how often a failed start-up check is run again while it is
// the newest word on document access (the operator may have fixed it).
var recheckEvery = 30 * time.Second

// docAccess is what one dialler last learned about Asterisk's access to
// faxbox's documents: from the start-up check (CheckDocuments) or from an
// attempt (a FILE_ERROR of res_fax's access() check, or a fax session that
// got past it).
type docAccess struct {
	mu        sync.Mutex
	problem   string    // "" when the last observation was fine
	at        time.Time // of the last observation; zero: none yet
	fromCheck bool      // the last observation was the start-up check
}

func (a *docAccess) set(problem string, fromCheck bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.problem, a.at, a.fromCheck = problem, time.Now(), fromCheck
}

func (a *docAccess) get() (problem string, at time.Time, fromCheck bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.problem, a.at, a.fromCheck
}

// DocumentProblem returns why the box's Asterisk cannot read faxbox's
// documents, or "" when it can (or nothing is known yet). The newest
// observation of any of ds decides: a FILE_ERROR on a validated document
// raises it, an attempt whose fax session started (the file was read)
// clears it. A failed start-up check is run again at most every 30 s while
// it is the newest observation, so fixing the permissions clears the alarm
// without waiting for a fax.
func DocumentProblem(ds map[string]*Dialler) string {
	var newest *Dialler
	var newestAt time.Time
	for _, d := range ds {
		if _, at, _ := d.access.get(); !at.IsZero() && (newest == nil || at.After(newestAt)) {
			newest, newestAt = d, at
		}
	}
	if newest == nil {
		return ""
	}
	if problem, at, fromCheck := newest.access.get(); problem != "" && fromCheck && time.Since(at) >= recheckEvery {
		newest.checkDocuments()
	}
	problem, _, _ := newest.access.get()
	return problem
}

// checkDocuments runs the start-up check for the configured documents
// directory and Asterisk's user, and records its verdict.
func (d *Dialler) checkDocuments() {
	if d.cfg.Documents == "" || d.cfg.UID < 0 {
		return // Asterisk runs as faxbox's own user, or nothing to check
	}
	gids := asteriskGroups(d.cfg.UID, d.cfg.GID)
	before, _, _ := d.access.get()
	if err := CheckDocuments(d.cfg.Documents, d.cfg.UID, gids); err != nil {
		if err.Error() != before { // once, not on every recheck
			d.cfg.Log.Error("asterisk: Asterisk's user cannot read faxbox's documents: every fax would fail until this is fixed",
				"component", "asterisk", "group", d.cfg.Group, "uid", d.cfg.UID, "gids", gids, "err", err)
		}
		d.access.set(err.Error(), true)
		return
	}
	if before != "" {
		d.cfg.Log.Info("asterisk: Asterisk's user can read faxbox's documents again", "component", "asterisk", "group", d.cfg.Group)
	}
	d.access.set("", true)
}

// asteriskGroups returns the groups Asterisk runs with: its primary group
// gid and the supplementary groups of user uid (Asterisk's -U initialises
// them from the group database).
func asteriskGroups(uid, gid int) []int {
	gids := []int{}
	if gid >= 0 {
		gids = append(gids, gid)
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return gids
	}
	ids, err := u.GroupIds()
	if err != nil {
		return gids
	}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil && g != gid {
			gids = append(gids, g)
		}
	}
	return gids
}

// CheckDocuments reports whether user uid with groups gids may open the
// documents faxbox writes under dir (faxbox's documents directory). It
// creates a probe the way faxbox writes a job's documents (a directory
// 0750 under this process's umask holding a file chmod 0640, with this
// process's owner and the directory's set-group-id bit) and checks the permission bits from / down
// to the probe file: search on every directory, read on the file. uid 0
// may read anything. The probe is removed before it returns.
func CheckDocuments(dir string, uid int, gids []int) error {
	if uid == 0 {
		return nil
	}
	probeDir := filepath.Join(dir, fmt.Sprintf(".asterisk-check-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(probeDir, 0o750); err != nil {
		return fmt.Errorf("asterisk: checking documents in %s: %w", dir, err)
	}
	defer os.RemoveAll(probeDir)
	probe := filepath.Join(probeDir, "fax.tif")
	err := os.WriteFile(probe, nil, 0o640)
	if err == nil {
		err = os.Chmod(probe, 0o640) // as faxbox's TIFFs: whatever the umask
	}
	if err != nil {
		return fmt.Errorf("asterisk: checking documents in %s: %w", dir, err)
	}
	abs, err := filepath.Abs(probe)
	if err != nil {
		return fmt.Errorf("asterisk: checking documents in %s: %w", dir, err)
	}
	member := map[int]bool{}
	for _, g := range gids {
		member[g] = true
	}
	var dirs []string // from / down: the first one that shuts it out is named
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		dirs = append([]string{p}, dirs...)
		if p == filepath.Dir(p) {
			break
		}
	}
	for _, p := range dirs {
		if err := permits(p, uid, member, 0o1, "search"); err != nil {
			return err
		}
	}
	return permits(abs, uid, member, 0o4, "read")
}

// permits checks that the permission bits of path grant want (0o4 read,
// 0o1 search) to uid with groups member, the way the kernel picks the
// owner, group or other class.
func permits(path string, uid int, member map[int]bool, want fs.FileMode, verb string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("asterisk: checking documents: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("asterisk: checking documents: no owner information")
	}
	perm := fi.Mode().Perm()
	var bits fs.FileMode
	switch {
	case int(st.Uid) == uid:
		bits = perm >> 6
	case member[int(st.Gid)]:
		bits = perm >> 3
	default:
		bits = perm
	}
	if bits&want == want {
		return nil
	}
	return fmt.Errorf("asterisk: Asterisk's user (uid %d) may not %s %s (%s, owner %d:%d), so it cannot read the documents faxbox writes there; "+
		"give Asterisk's group access to faxbox's data directory (group-owned by it, set-group-id on documents/) or run faxbox as Asterisk's user",
		uid, verb, path, fi.Mode(), st.Uid, st.Gid)
}

// observeAccess records what fax attempt c, ending with res, showed about
// Asterisk's access to its document: res_fax's access() check failed
// (box.document_access), or a fax session started, which it does only once
// that check passed (T.38 negotiated, transmission in progress, success).
func (d *Dialler) observeAccess(c *call, res dialler.Result) {
	switch {
	case res.Code == failure.BoxDocumentAccess:
		d.cfg.Log.Error("asterisk: Asterisk could not read a validated document: the job is kept and retried, the alarm is up until a fax reads its file",
			"component", "asterisk", "group", d.cfg.Group, "attempt", c.req.AttemptID, "job", c.req.JobID, "file", c.req.Fax.TIFF, "raw", res.Raw)
		d.access.set(fmt.Sprintf("Asterisk could not read %s (attempt %s): %s", c.req.Fax.TIFF, c.req.AttemptID, res.Raw), false)
	case c.t38 || c.sending || res.OK():
		d.access.set("", false)
	}
}
