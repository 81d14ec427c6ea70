// Package services renders the Asterisk configuration faxbox runs with, from
// faxbox's own configuration, so one file describes the box. RenderTo writes
// asterisk.conf, modules.conf, logger.conf, manager.conf, pjsip.conf,
// extensions.conf, res_fax.conf, udptl.conf, rtp.conf and indications.conf,
// and chan_dahdi.conf on a box with DAHDI line cards (cfg.DAHDI; dahdi/
// renders it and DAHDI's own system.conf).
//
// # Dialplan contract (faxbox-send)
//
// The dialler originates (AMI Originate, async, or a call file)
//
//	Channel:   PJSIP/<digits>@<trunk>        (T.38 offered)
//	           PJSIP/<digits>@<trunk>-g711   (G.711 only: t38_udptl=no)
//	Context:   faxbox-send
//	Exten:     send
//	Priority:  1
//	ChannelId: <attempt id>                  (the channel's Uniqueid)
//
// with channel variables, every one validated by faxbox before it is sent
// (firmware/asterisk): FAXBOX_ATTEMPT and FAXBOX_JOB ([a-z0-9_]), FAXBOX_KEPT
// (the line, <group>.<n>: [a-z0-9_-] and digits), FAXBOX_FILE (an
// absolute path of [A-Za-z0-9/._-]), FAXBOX_ECM (yes|no), FAXBOX_MAXRATE
// (2400…14400), FAXBOX_FALLBACK (yes|no: SendFAX's f, audio fallback),
// FAXBOX_TIMEOUT (seconds the call may last: a far end that never speaks
// fax must not hold the line),
// FAXBOX_STATION and FAXBOX_HEADER ([A-Za-z0-9 +.:/()_-]).
//
// When the call ends, the h extension publishes
//
//	UserEvent(FaxboxResult, Attempt, Job, Status, StatusStr, Error, Pages,
//	          Rate, Resolution, ECM, RemoteStationID, HangupCause)
//
// because the SendFAX manager event carries no status (the result lives only in FAXOPT()). Values
// that come from the far end (station id, spandsp texts) pass through
// FILTER() so that no separator can split or forge a header. The same
// result is kept in AstDB per line, faxbox-result/<FAXBOX_KEPT> =
// attempt|status|error|pages|rate|cause|statusstr, where FAXBOX_KEPT is
// <group>.<n>, the line the attempt occupies: a line's next fax replaces
// it, so AstDB holds one result per line, not one per fax. It is there for
// when faxbox or its manager connection was down as the call ended
// (firmware/asterisk reads it back with DBGet, which the reporting write
// class allows, and takes it only if it names the attempt it asks about).
//
// # Receiving (faxbox-receive, faxbox-rx)
//
// Inbound calls on the trunk (by dialled number: every number, or only
// those of inbox.dids, others refused as unallocated) and on DAHDI FXO lines
// (exten s) go to faxbox-rx, which ReceiveFAXes into
// ReceiveDir/rx-<uniqueid>.tif. When the call ends, the h extension keeps
// the result in AstDB, faxbox-rx/<uniqueid> =
// status|error|pages|rate|resolution|ecm|mode|callerid|did|start|end|station|channel|statusstr,
// and then publishes
//
//	UserEvent(FaxboxReceived, Reception, File, Status, Error, StatusStr,
//	          Pages, Rate, Resolution, ECM, Mode, CallerID, DID, Started,
//	          Ended, RemoteStationID, RxChannel)
//
// in that order, so that once the channel is gone the kept result is there
// (firmware/asterisk's Receiver reads both; package receiving records them).
//
// # Self-test loop (faxbox-selftest)
//
// pjsip.conf has an endpoint faxbox-selftest (and faxbox-selftest-g711)
// whose contact is the box's own transport. The self-test's line dials
// PJSIP/<loop number>@faxbox-selftest into faxbox-send like any fax; the
// INVITE comes back in, is identified by its request URI
// sip:<loop number>@<host>:<sip port> (request_uri first in the global
// endpoint_identifier_order, before the trunk's identify by address) as
// faxbox-selftest, whose context faxbox-selftest has only the loop number:
// ReceiveFAX into <receive_dir>/selftest-<job id>.tif (the job id is the
// caller name). The loop number comes from the manager secret (package
// selftest).
package services

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/faxbox/faxbox/dahdi"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/selftest"
	"github.com/faxbox/faxbox/internal/atomicfile"
)

//go:embed asterisk/*.tmpl
var tmpls embed.FS

// Files is the rendered configuration, by file name.
type Files map[string][]byte

// Modules is the exact module list (autoload=no): every module the fax path and its dependencies need plus what the
// rendered dialplan uses.
var Modules = []string{
	"res_sorcery_config.so", "res_sorcery_memory.so", "res_sorcery_astdb.so", "res_sorcery_realtime.so",
	"res_timing_timerfd.so", "pbx_config.so", "pbx_spool.so",
	"res_pjproject.so", "res_pjsip.so", "res_pjsip_session.so", "res_pjsip_pubsub.so", "res_pjsip_sdp_rtp.so",
	"res_pjsip_t38.so", "res_pjsip_endpoint_identifier_ip.so", "res_pjsip_authenticator_digest.so",
	"res_pjsip_outbound_authenticator_digest.so", "res_pjsip_caller_id.so",
	"res_pjsip_header_funcs.so", "res_rtp_asterisk.so", "chan_pjsip.so",
	"codec_ulaw.so", "codec_alaw.so", "format_pcm.so", "format_wav.so",
	"res_fax.so", "res_fax_spandsp.so",
	"app_playback.so", "app_userevent.so", "app_dial.so", "func_channel.so", "func_strings.so", "func_logic.so",
	"func_hangupcause.so", "func_callerid.so", "func_timeout.so", "func_db.so",
	"app_read.so", "bridge_simple.so", "bridge_native_rtp.so", "bridge_builtin_features.so",
}

// safe matches values that may appear in a configuration file.
var (
	safeWord = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	safePath = regexp.MustCompile(`^/[A-Za-z0-9/_.-]{0,255}$`)
)

type view struct {
	A        config.Asterisk
	T        config.Trunk
	HasTrunk bool
	Peer     string // host of the trunk peer
	PeerPort int
	Modules  []string
	Dirs     map[string]string
	// CallbackNumber is the inbound callback extension ("" = off).
	CallbackNumber string
	// DAHDI: the box has DAHDI line cards (chan_dahdi.conf is rendered).
	DAHDI bool
	// Qualify: the trunk is qualified (faxbox follows ContactStatus).
	Qualify bool
	// ReceiveDIDs: the extensions (numbers, patterns) that receive faxes;
	// empty: every number.
	ReceiveDIDs []string
	// SelfTest is the loopback number of the self-test (package
	// selftest), SelfHost the address the box's SIP transport answers on.
	SelfTest, SelfHost string
}

// DAHDIModules are loaded on a box with DAHDI line cards: the channel
// driver, and ExecIf for the dialplan's DAHDI-only steps.
var DAHDIModules = []string{"chan_dahdi.so", "app_exec.so"}

// Render produces the configuration files for cfg.Asterisk.
func Render(cfg config.Config) (Files, error) {
	if cfg.Asterisk == nil {
		return nil, errors.New("services: the config has no asterisk section")
	}
	a := asteriskDefaults(*cfg.Asterisk)
	errs := checkAsterisk(a)
	v := view{A: a, Modules: Modules, CallbackNumber: cfg.Calls.Callback.Number, ReceiveDIDs: didPatterns(cfg.Inbox.Ranges()),
		SelfTest: selftest.Number(a.AMISecret), SelfHost: selftest.Host(a.BindAddr)}
	var chanDahdi []byte
	if cfg.DAHDI != nil && len(cfg.DAHDI.Spans) > 0 {
		var err error
		if _, chanDahdi, err = dahdi.Render(*cfg.DAHDI); err != nil {
			errs = append(errs, err)
		}
		v.DAHDI = true
		v.Modules = append(slices.Clip(Modules), DAHDIModules...)
	}
	if n := v.CallbackNumber; n != "" && (len(n) > 20 || strings.Trim(n, "0123456789") != "") {
		errs = append(errs, fmt.Errorf("calls.callback.number %q: digits", n))
	}
	if a.Trunk != nil {
		errs = append(errs, v.trunk(*a.Trunk)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out, err := execute(v)
	if err != nil {
		return nil, err
	}
	if v.DAHDI {
		out["chan_dahdi.conf"] = chanDahdi
	}
	return out, nil
}

func def(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// asteriskDefaults fills in what the asterisk section leaves out: Debian's
// directories, all addresses, the standard ports and media port ranges.
func asteriskDefaults(a config.Asterisk) config.Asterisk {
	def(&a.ConfigDir, "/etc/asterisk")
	def(&a.SpoolDir, "/var/spool/asterisk")
	def(&a.RunDir, "/var/run/asterisk")
	def(&a.LogDir, "/var/log/asterisk")
	def(&a.LibDir, "/var/lib/asterisk")
	def(&a.DBDir, a.LibDir)
	def(&a.DataDir, "/usr/share/asterisk")
	def(&a.ModDir, "/usr/lib/x86_64-linux-gnu/asterisk/modules")
	def(&a.ReceiveDir, filepath.Join(a.SpoolDir, "fax"))
	def(&a.BindAddr, "0.0.0.0")
	def(&a.AMIUser, "faxbox")
	if a.SIPPort == 0 {
		a.SIPPort = 5060
	}
	if a.AMIPort == 0 {
		a.AMIPort = 5038
	}
	if a.RTPStart == 0 {
		a.RTPStart, a.RTPEnd = 10000, 10999
	}
	if a.UDPTLStart == 0 {
		a.UDPTLStart, a.UDPTLEnd = 4000, 4999
	}
	return a
}

// checkAsterisk refuses every value of a that could break out of the
// configuration file it is written into.
func checkAsterisk(a config.Asterisk) []error {
	var errs []error
	for name, p := range map[string]string{"config_dir": a.ConfigDir, "spool_dir": a.SpoolDir, "run_dir": a.RunDir, "log_dir": a.LogDir,
		"lib_dir": a.LibDir, "db_dir": a.DBDir, "data_dir": a.DataDir, "mod_dir": a.ModDir, "receive_dir": a.ReceiveDir} {
		if !safePath.MatchString(p) {
			errs = append(errs, fmt.Errorf("asterisk.%s %q: an absolute path of letters, digits, / _ . -", name, p))
		}
	}
	if net.ParseIP(a.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("asterisk.bind_addr %q is not an IP address", a.BindAddr))
	}
	if !safeWord.MatchString(a.AMIUser) {
		errs = append(errs, fmt.Errorf("asterisk.ami_user %q: letters, digits, _ . -", a.AMIUser))
	}
	if len(a.AMISecret) < 8 || !safeWord.MatchString(a.AMISecret) {
		errs = append(errs, errors.New("asterisk.ami_secret: 8 to 64 letters, digits, _ . -"))
	}
	for name, port := range map[string]int{"sip_port": a.SIPPort, "ami_port": a.AMIPort, "rtp_start": a.RTPStart, "rtp_end": a.RTPEnd, "udptl_start": a.UDPTLStart, "udptl_end": a.UDPTLEnd} {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("asterisk.%s %d is not a port", name, port))
		}
	}
	return errs
}

// trunk checks the SIP trunk section and puts it into the view.
func (v *view) trunk(t config.Trunk) []error {
	var errs []error
	def(&t.Name, "trunk")
	v.T, v.HasTrunk = t, true
	v.Qualify = t.Qualify > 0
	if !safeWord.MatchString(t.Name) || strings.HasSuffix(t.Name, "-g711") {
		errs = append(errs, fmt.Errorf("asterisk.trunk.name %q: letters, digits, _ . - (not ending in -g711)", t.Name))
	}
	host, port, err := net.SplitHostPort(t.Host)
	if err != nil {
		host, port = t.Host, "5060"
	}
	n, _ := strconv.Atoi(port)
	if net.ParseIP(host) == nil && !safeWord.MatchString(host) || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("asterisk.trunk.host %q: host:port", t.Host))
	}
	v.Peer, v.PeerPort = host, n
	for name, val := range map[string]string{"username": t.Username, "password": t.Password} {
		if val != "" && !safeWord.MatchString(val) {
			errs = append(errs, fmt.Errorf("asterisk.trunk.%s: letters, digits, _ . -", name))
		}
	}
	return errs
}

// execute renders every Asterisk template with v.
func execute(v view) (Files, error) {
	out := Files{}
	entries, _ := tmpls.ReadDir("asterisk")
	for _, e := range entries {
		t, err := template.ParseFS(tmpls, "asterisk/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("services: %s: %w", e.Name(), err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, v); err != nil {
			return nil, fmt.Errorf("services: %s: %w", e.Name(), err)
		}
		out[strings.TrimSuffix(e.Name(), ".tmpl")] = buf.Bytes()
	}
	return out, nil
}

// RenderTo renders and writes the files into dir (each via a temporary file
// and rename). asterisk.conf's astetcdir is dir, whatever config_dir says:
// Asterisk must read the files where they were written (an image renders
// them onto its data partition, not into /etc/asterisk).
func RenderTo(cfg config.Config, dir string) ([]string, error) {
	if cfg.Asterisk != nil {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		a := *cfg.Asterisk
		a.ConfigDir = abs
		cfg.Asterisk = &a
	}
	files, err := Render(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	var names []string
	for name, b := range files {
		mode := os.FileMode(0o644)
		if name == "manager.conf" || name == "pjsip.conf" {
			mode = 0o640 // secrets
		}
		if err := atomicfile.Write(filepath.Join(dir, name), b, mode); err != nil {
			return nil, fmt.Errorf("services: %w", err)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
