package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/services"
)

// The remote's numbers (the far end of the lab's trunk):
//
//	100  fax receiver, T.38 capable
//	101  fax receiver, G.711 only (its calls arrive on an endpoint without
//	     T.38: the box's T.38 re-INVITE is refused)
//	102  busy
//	103  rings, never answers
//	104  answers with a voice prompt, not a fax
//	105  receives page 1, then hangs up — only on the first call of a job
//	     (the box's caller id name carries the job id); receives normally after
//	106  slow receiver: ECM off, at most 9600 bit/s (G.711 only, like 101:
//	     spandsp applies these limits to audio fax, not to T.38 relay)
//	107  fax server behind one number: receives like 100, at most 4 calls at
//	     once; a fifth call meanwhile is answered busy
//	108  one-line fax machine: receives like 100, busy while in a call
//	109  fax receiver, T.38 without error correction (no redundancy, no
//	     FEC: every lost UDPTL datagram is lost for good)
//	200  answers and stays 8 s (an agent or a customer)
//	201  answers and sends DTMF 1 two seconds in (acknowledges)
//	202  busy
//	203  rings, never answers
//	204  answers and hangs up after 1 s without a digit
//	300  when called back: keys PIN 1234#, then destination 200#
//	301  when called back: keys a wrong PIN three times
//	302  when called back: keys PIN 1234#, then the premium number 0900123456#
//	399  answers (a caller the box must not call back)
//
// CallBox makes the remote call the box (its callback number) from a chosen
// caller id; Send makes it send a fax to the box (context to-box).
//
// Every call is counted in the remote's astdb (family faxlab-calls, key
// <number>-<uniqueid>); received faxes are <number>-<uniqueid>.tif in rx/.
const remoteDialplan = `[general]
static = yes
writeprotect = yes

[from-box]
exten => _[123]XX,1,Set(DB(faxlab-calls/${EXTEN}-${UNIQUEID})=${FILTER(a-z0-9_,${CALLERID(name)})})
 same => n,Goto(n${EXTEN},1)

exten => n100,1,Set(FAXOPT(localstationid)=LAB-100 REMOTE)
 same => n,Answer()
 same => n,ReceiveFAX({{RX}}/100-${UNIQUEID}.tif,f)
 same => n,Hangup()

exten => n101,1,Answer()
 same => n,ReceiveFAX({{RX}}/101-${UNIQUEID}.tif)
 same => n,Hangup()

exten => n102,1,Busy(5)

exten => n103,1,Ringing()
 same => n,Wait(600)

exten => n104,1,Answer()
 same => n,Wait(1)
 same => n(loop),Playback(hello-world)
 same => n,Playback(demo-congrats)
 same => n,Goto(loop)

exten => n105,1,Set(JOBKEY=${FILTER(a-z0-9_,${CALLERID(name)})})
 same => n,GotoIf($["${DB_EXISTS(faxlab-105/${JOBKEY})}" = "1"]?again)
 same => n,Set(DB(faxlab-105/${JOBKEY})=1)
 same => n,Answer()
 same => n,ReceiveFAX({{RX}}/105first-${UNIQUEID}.tif,f)
 same => n,Hangup()
 same => n(again),Answer()
 same => n,ReceiveFAX({{RX}}/105-${UNIQUEID}.tif,f)
 same => n,Hangup()

exten => n200,1,Answer()
 same => n,Wait(8)
 same => n,Hangup()

exten => n201,1,Answer()
 same => n,Wait(2)
 same => n,SendDTMF(1)
 same => n,Wait(15)
 same => n,Hangup()

exten => n202,1,Busy(5)

exten => n203,1,Ringing()
 same => n,Wait(600)

exten => n204,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()

; Called back by the box's inbound callback service:
exten => n300,1,Answer()
 same => n,Wait(2)
 same => n,SendDTMF(1234#)
 same => n,Wait(3)
 same => n,SendDTMF(200#)
 same => n,Wait(20)
 same => n,Hangup()

exten => n301,1,Answer()
 same => n,Wait(2)
 same => n,SendDTMF(9999#)
 same => n,Wait(3)
 same => n,SendDTMF(8888#)
 same => n,Wait(3)
 same => n,SendDTMF(7777#)
 same => n,Wait(10)
 same => n,Hangup()

exten => n302,1,Answer()
 same => n,Wait(2)
 same => n,SendDTMF(1234#)
 same => n,Wait(3)
 same => n,SendDTMF(0900123456#)
 same => n,Wait(10)
 same => n,Hangup()

exten => n399,1,Answer()
 same => n,Wait(5)
 same => n,Hangup()

exten => n107,1,Gosub(faxlab-limit,s,1(n107,4))
 same => n,Answer()
 same => n,ReceiveFAX({{RX}}/107-${UNIQUEID}.tif,f)
 same => n,Hangup()

exten => n108,1,Gosub(faxlab-limit,s,1(n108,1))
 same => n,Answer()
 same => n,ReceiveFAX({{RX}}/108-${UNIQUEID}.tif,f)
 same => n,Hangup()

exten => n109,1,Answer()
 same => n,ReceiveFAX({{RX}}/109-${UNIQUEID}.tif,f)
 same => n,Hangup()

exten => n106,1,Answer()
 same => n,Set(FAXOPT(ecm)=no)
 same => n,Set(FAXOPT(modems)=v27,v29)
 same => n,Set(FAXOPT(maxrate)=9600)
 same => n,ReceiveFAX({{RX}}/106-${UNIQUEID}.tif,f)
 same => n,Hangup()

; Sending to the box (Send, faxbox-lab send): originated with Channel
; PJSIP/<did>@box (T.38: the box's receiver re-INVITEs) or @box-g711 (no
; T.38: the box falls back to G.711 audio), LABFILE the TIFF, LABSTATION
; the station id.
[to-box]
exten => send,1,Set(FAXOPT(localstationid)=${LABSTATION})
 same => n,SendFAX(${LABFILE},d)
 same => n,Hangup()

; Gosub(faxlab-limit,s,1(group,max)): the call joins group when it holds
; fewer than max calls, and answers busy otherwise. The lock makes counting
; and joining one step, so simultaneous calls are counted one by one; a busy
; call never joins, and a call leaves the group when it hangs up.
[faxlab-limit]
exten => s,1,Set(LOCKED=${LOCK(faxlab-${ARG1})})
 same => n,GotoIf($[${GROUP_COUNT(${ARG1}@faxlab)} >= ${ARG2}]?full)
 same => n,Set(GROUP(faxlab)=${ARG1})
 same => n,Set(UNLOCKED=${UNLOCK(faxlab-${ARG1})})
 same => n,Return()
 same => n(full),Set(UNLOCKED=${UNLOCK(faxlab-${ARG1})})
 same => n,Busy(5)
`

func (l *Lab) writeRemote() error {
	r := l.Remote
	etc := filepath.Join(r.Dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	// Reuse the rendered generic files (modules, logger, res_fax, indications)
	// from a render for the remote's own ports and directories.
	cfg := config.Default()
	cfg.Asterisk = l.asteriskFor(r, l.Box)
	files, err := services.Render(cfg)
	if err != nil {
		return err
	}
	files["modules.conf"] = append(files["modules.conf"], []byte("load => func_db.so\nload => app_stack.so\nload => app_senddtmf.so\nload => func_lock.so\nload => func_groupcount.so\n")...)
	files["manager.conf"] = []byte(fmt.Sprintf(`[general]
enabled = yes
port = %d
bindaddr = 127.0.0.1

[%s]
secret = %s
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
`, r.AMIPort, RemoteAMIUser, RemoteAMISecret))
	files["pjsip.conf"] = []byte(fmt.Sprintf(`[global]
type = global
endpoint_identifier_order = request_uri,ip,username,anonymous,header,auth_username

[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:%d

[box]
type = aor
contact = sip:127.0.0.1:%d

[box]
type = endpoint
transport = transport-udp
context = from-box
disallow = all
allow = ulaw,alaw
direct_media = no
aors = box
t38_udptl = yes
t38_udptl_ec = redundancy
t38_udptl_maxdatagram = 400

; 101 is a G.711-only machine: its calls arrive on an endpoint without T.38
; (identified by the request URI), so the box's T.38 re-INVITE is refused.
[box-g711]
type = endpoint
transport = transport-udp
context = from-box
disallow = all
allow = ulaw,alaw
direct_media = no
aors = box
t38_udptl = no

[a-g711-identify]
type = identify
endpoint = box-g711
match_request_uri = sip:101@127.0.0.1:%d

[b-g711-identify]
type = identify
endpoint = box-g711
match_request_uri = sip:106@127.0.0.1:%d

; 109 is T.38 without error correction.
[box-noec]
type = endpoint
transport = transport-udp
context = from-box
disallow = all
allow = ulaw,alaw
direct_media = no
aors = box
t38_udptl = yes
t38_udptl_ec = none
t38_udptl_maxdatagram = 400

[c-noec-identify]
type = identify
endpoint = box-noec
match_request_uri = sip:109@127.0.0.1:%d

[box-identify]
type = identify
endpoint = box
match = 127.0.0.1
`, r.SIPPort, l.Box.SIPPort, r.SIPPort, r.SIPPort, r.SIPPort))
	if l.Opts.Relay {
		files["pjsip.conf"] = []byte(strings.ReplaceAll(string(files["pjsip.conf"]), "direct_media = no\n", "direct_media = no\n"+relayEndpointOptions))
	}
	files["extensions.conf"] = []byte(strings.ReplaceAll(remoteDialplan, "{{RX}}", l.Received))
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(etc, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
