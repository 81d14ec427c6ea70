//go:build lab

package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/faxbox/faxbox/firmware/ami"
	"github.com/faxbox/faxbox/firmware/box"
	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/directory"
	"github.com/faxbox/faxbox/firmware/inbox"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/media/health"
	"github.com/faxbox/faxbox/firmware/receiving"
	"github.com/faxbox/faxbox/firmware/selftest"
	"github.com/faxbox/faxbox/firmware/store"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// What the console test's box knows beyond the test line: a phone book
// and the media health records a box with SIP trunks keeps.

// phoneBook is a directory server for the console's box: two Müllers (so
// "Müller" names two fax numbers) and Anna, who has a phone only.
type phoneBook struct{}

func (phoneBook) Read(context.Context) (*directory.Raw, error) {
	rec := func(dn string, kv ...string) directory.Record {
		r := directory.Record{DN: dn, Attrs: map[string][]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			k := strings.ToLower(kv[i])
			r.Attrs[k] = append(r.Attrs[k], kv[i+1])
		}
		return r
	}
	return &directory.Raw{Book: []directory.Record{
		rec("o=Müller GmbH,ou=book,dc=example,dc=com", "o", "Müller GmbH", "facsimileTelephoneNumber", "9999 0001", "telephoneNumber", "99990001"),
		rec("o=Müller AG,ou=book,dc=example,dc=com", "o", "Müller AG", "facsimileTelephoneNumber", "9999-0004"),
		rec("cn=Anna Alt,ou=book,dc=example,dc=com", "cn", "Anna Alt", "telephoneNumber", "99990001"),
	}}, nil
}

func (phoneBook) Bind(context.Context, string, string) error { return fmt.Errorf("no passwords here") }

// lossyWhy is what the seeded record says the path to 99990001 showed.
const lossyWhy = "3% unrecoverable loss"

// seedHealth writes, into the data directory's store, the media health
// records a box with SIP trunks would have kept: trunk "sip" whose last
// attempt lost 3% of the UDPTL datagrams beyond repair (in alarm), trunk
// "sip-b" with a clean G.711 attempt, and 99990001 known as a lossy path.
func seedHealth(t *testing.T, dataDir string) {
	st, err := store.Open(dataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	trunks := map[string][]health.Sample{
		"sip":   {{At: now, Transport: "t38", Dirs: [2]health.Direction{{Expected: 280}, {Expected: 300, Lost: 12, Unrecoverable: 9}}}},
		"sip-b": {{At: now, Transport: "g711", Dirs: [2]health.Direction{{Expected: 1000, JitterMS: 3}, {Expected: 1000, JitterMS: 4}}}},
	}
	recs := map[string]health.Record{"99990001": {LossyAt: now.Add(-time.Hour), LossyWhy: lossyWhy}}
	if err := st.PutState(health.TrunkStateKey, trunks); err != nil {
		t.Fatal(err)
	}
	if err := st.PutState(health.StateKey, recs); err != nil {
		t.Fatal(err)
	}
}

// consoleBox is testbox.Start for the console: the same box, with the
// phone book above as its directory and the seeded health records.
func consoleBox(t *testing.T, mod func(*config.Config)) *testbox.Env {
	t.Helper()
	testkit.Require(t, "gs", "tiff2pdf")
	return testbox.StartWith(t, testbox.Options{
		Config: func(c *config.Config) {
			c.LDAP = config.LDAP{URL: "ldap://directory.invalid", BaseDN: "dc=example,dc=com", TTL: config.Duration(time.Hour)}
			if mod != nil {
				mod(c)
			}
		},
		Before: func(c config.Config) { seedHealth(t, c.DataDir) },
		Box:    box.Options{DirectorySource: phoneBook{}},
		Ready:  func(b *box.Box) bool { return b.Directory().Status().LastSync != nil },
	})
}

// text is the text of the element with id.
func text(p *page, id string) string {
	p.t.Helper()
	return eval[string](p, `document.getElementById("`+id+`").textContent`)
}

// phoneBookSend types names into the Send form's number: the matches are
// offered and one is chosen by keyboard; an ambiguous name is refused with
// its candidates, one of which is then chosen; the whole name resolves at
// once; an unknown name is refused in words.
func phoneBookSend(t *testing.T, p *page, e *testbox.Env) {
	pdf := filepath.Join(t.TempDir(), "book.pdf")
	os.WriteFile(pdf, testkit.PDF(t, 1), 0o644)
	p.tab("send")
	p.openOptions()
	p.do("send now", setv("send_at", ""))
	if h := text(p, "to-help"); !strings.Contains(h, "or a name from the phone book") {
		t.Errorf("the number's help reads %q on a box with a phone book", h)
	}
	p.do("type a name's start", setv("to", ""), chromedp.Click(chromedp.ID("to")), chromedp.SendKeys(chromedp.ID("to"), "mül"))
	p.wait("the matches", `!document.getElementById("to-list").hidden && document.querySelectorAll("#to-list li").length === 2`, 10*time.Second)
	opts := eval[[]string](p, `[...document.querySelectorAll("#to-list li")].map((li) => li.textContent)`)
	if len(opts) != 2 || !strings.Contains(opts[0], "Müller AG") || !strings.Contains(opts[0], "99990004") || !strings.Contains(opts[1], "Müller GmbH") || !strings.Contains(opts[1], "99990001") {
		t.Errorf("matches for mül: %q", opts)
	}
	if eval[string](p, `document.getElementById("to").getAttribute("aria-expanded")`) != "true" {
		t.Errorf("the combobox does not say it is expanded")
	}
	p.shot("send-phonebook")
	p.do("choose the second by keyboard", chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter))
	p.wait("the number filled in", `document.getElementById("to").value === "99990001" && document.getElementById("to-list").hidden`, 5*time.Second)
	if w := text(p, "to-book"); !strings.Contains(w, "Müller GmbH") {
		t.Errorf("after choosing, the field is explained as %q", w)
	}

	// An ambiguous name is refused with the candidates; one is chosen.
	before := len(e.Jobs(t, job.KindFax))
	p.do("send to Müller", chromedp.SetUploadFiles(chromedp.ID("files"), []string{pdf}), setv("to", "Müller"), chromedp.Click(chromedp.ID("send-btn")))
	p.wait("the refusal", `document.getElementById("send-msg").classList.contains("err") && document.querySelectorAll("#to-book button").length === 2`, 10*time.Second)
	if msg := text(p, "send-msg"); !strings.Contains(msg, "“Müller” names more than one fax number") {
		t.Errorf("ambiguous name: %q", msg)
	}
	cands := eval[[]string](p, `[...document.querySelectorAll("#to-book button")].map((b) => b.textContent)`)
	if len(cands) != 2 || cands[0] != "99990004 — Müller AG" || cands[1] != "99990001 — Müller GmbH" {
		t.Errorf("candidates: %q", cands)
	}
	if n := len(e.Jobs(t, job.KindFax)); n != before {
		t.Errorf("%d faxes on the box after the refusal, want the %d sent before", n, before)
	}
	p.shot("send-ambiguous")
	p.do("choose Müller AG", chromedp.Click(chromedp.CSS(`#to-book button[aria-label^="Use 99990004"]`)))
	p.wait("its number", `document.getElementById("to").value === "99990004"`, 5*time.Second)
	// The whole name (any case) names one number: sent at once.
	p.do("send to müller gmbh", setv("to", "müller gmbh"), chromedp.Click(chromedp.ID("send-btn")))
	id := p.sentID()
	var j job.Job
	e.C.Do(t, "GET", "/v1/faxes/"+id, nil, "", &j)
	if j.To != "99990001" || eval[string](p, `document.getElementById("to").value`) != "99990001" || !strings.Contains(text(p, "send-msg"), "to 99990001 is queued") {
		t.Errorf("the fax to müller gmbh went to %q (the field reads %q)", j.To, eval[string](p, `document.getElementById("to").value`))
	}
	e.C.WaitJob(t, "/v1/faxes/"+id, job.Delivered, 30*time.Second, true)
	// A name the phone book does not know.
	p.do("send to Zebra", chromedp.SetUploadFiles(chromedp.ID("files"), []string{pdf}), setv("to", "Zebra AG"), chromedp.Click(chromedp.ID("send-btn")))
	p.wait("the refusal", `/No fax number in the phone book for “Zebra AG”/.test(document.getElementById("send-msg").textContent)`, 10*time.Second)
	if !eval[bool](p, `document.getElementById("to").getAttribute("aria-invalid") === "true"`) {
		t.Errorf("the unknown name's field is not marked")
	}
	eval[bool](p, `(() => { state.files = []; renderFiles(); return true; })()`)
}

// phoneBookCalls: the alert call's number takes a name; the phone book's
// phone numbers are offered (not its fax numbers).
func phoneBookCalls(t *testing.T, p *page) {
	p.tab("calls")
	p.do("type a name", setv("m-to", ""), chromedp.Click(chromedp.ID("m-to")), chromedp.SendKeys(chromedp.ID("m-to"), "anna"))
	p.wait("the match", `!document.getElementById("m-to-list").hidden && document.querySelectorAll("#m-to-list li").length === 1`, 10*time.Second)
	if o := eval[string](p, `document.querySelector("#m-to-list li").textContent`); !strings.Contains(o, "Anna Alt") || !strings.Contains(o, "99990001") {
		t.Errorf("match for anna: %q", o)
	}
	p.do("Escape closes it", chromedp.KeyEvent(kb.Escape))
	p.wait("closed", `document.getElementById("m-to-list").hidden`, 5*time.Second)
	// Müller: only the GmbH has a phone number, so the name is not ambiguous here.
	eval[bool](p, `(() => { setMsg("msgcall-msg", ""); return true; })()`)
	p.do("an alert call to Müller", setv("m-to", "Müller"), setv("m-say", "The delivery is ready."), chromedp.Click(chromedp.ID("msg-btn")))
	p.wait("the call queued", `/queued/.test(document.getElementById("msgcall-msg").textContent)`, 15*time.Second)
	if msg := text(p, "msgcall-msg"); !strings.Contains(msg, "to 99990001 is queued") {
		t.Errorf("the alert call to Müller: %q", msg)
	}
}

// mediaHealth checks the Lines tab's media health against /v1/status and
// an attempt's decision in the outbox and the details.
func mediaHealth(t *testing.T, p *page, e *testbox.Env, delivered string) {
	var st struct {
		Extra struct {
			Alarms      []string
			MediaHealth struct {
				Alarm  bool
				Trunks []health.TrunkHealth
			} `json:"media_health"`
		}
	}
	e.C.Do(t, "GET", "/v1/status", nil, "", &st)
	if !st.Extra.MediaHealth.Alarm || len(st.Extra.MediaHealth.Trunks) != 2 {
		t.Fatalf("the box's media health: %+v", st.Extra.MediaHealth)
	}
	p.tab("lines")
	p.wait("the media health", `document.querySelectorAll("#media-health tr[data-trunk]").length === 2`, 10*time.Second)
	for _, h := range st.Extra.MediaHealth.Trunks {
		row := eval[string](p, `document.querySelector('#media-health tr[data-trunk="`+h.Trunk+`"]').textContent`)
		for _, want := range []string{fmt.Sprintf("%.2f%%", h.T38LossPct), fmt.Sprintf("%.2f%%", h.T38UnrecoverablePct),
			fmt.Sprintf("%.2f%%", h.RTPLossPct), fmt.Sprintf("%.1f ms", h.RTPJitterMS), fmt.Sprint(h.Attempts)} {
			if !strings.Contains(row, want) {
				t.Errorf("trunk %s reads %q, lacks %q", h.Trunk, row, want)
			}
		}
		if h.Alarm != strings.Contains(row, "alarm") {
			t.Errorf("trunk %s (alarm %v) reads %q", h.Trunk, h.Alarm, row)
		}
		for _, w := range h.Why {
			if !strings.Contains(row, w) {
				t.Errorf("trunk %s reads %q, lacks why %q", h.Trunk, row, w)
			}
		}
	}
	if a := text(p, "alarms"); !strings.Contains(a, "Fax over IP (T.38) is failing more than it should.") {
		t.Errorf("the alarms read %q; want T.38 health bad in words", a)
	}
	if m := text(p, "media-health"); !strings.Contains(m, "Fax over IP is failing more than it should: sip.") {
		t.Errorf("the media health reads %q", m)
	}
	p.shot("lines-health")

	// The delivered fax to 99990001 was sent with the settings the lossy
	// record asks for, and says why.
	var j job.Job
	e.C.Do(t, "GET", "/v1/faxes/"+delivered, nil, "", &j)
	a := j.LastAttempt()
	if a == nil || !strings.Contains(a.Decision, lossyWhy) {
		t.Fatalf("the delivered fax's attempt has no decision from the lossy record: %+v", a)
	}
	p.tab("outbox")
	if d := eval[string](p, row("outbox", delivered)+`.querySelector('td[data-label="Details"]').textContent`); !strings.Contains(d, "Settings: "+a.Decision) {
		t.Errorf("the outbox row reads %q, lacks the decision %q", d, a.Decision)
	}
	p.do("details", chromedp.Click(chromedp.CSS(`#outbox tr[data-id="`+delivered+`"] button[aria-label^="Details"]`)))
	p.wait("the details", `document.getElementById("details").open && document.querySelector('#details-body td[data-label="Settings"]')`, 10*time.Second)
	if d := eval[string](p, `document.querySelector('#details-body td[data-label="Settings"]').textContent`); d != a.Decision {
		t.Errorf("the attempt's settings read %q, want %q", d, a.Decision)
	}
	p.do("close", chromedp.Click(chromedp.ID("details-close")))
}

// mediaReports renders media reports as the box writes them (JSON of
// job.MediaReport) with the console's own function, as the details and
// the self-test show them.
func mediaReports(t *testing.T, p *page) {
	sw := int64(120)
	for _, c := range []struct {
		m    job.MediaReport
		want []string
	}{
		{job.MediaReport{Transport: "t38", SwitchToUDPTLMS: &sw, T38: &job.T38Report{
			Sent:     job.UDPTLDirection{Packets: 280, LongestBurst: 0, RedundancyDepth: 3, LargestDatagram: 212, MaxDatagram: 160, OverMaxDatagram: true, PageJitterMS: 1.25},
			Received: job.UDPTLDirection{Packets: 291, Gaps: 9, Recovered: 6, Unrecoverable: 3, LongestBurst: 4, RedundancyDepth: 3, LargestDatagram: 244, MaxDatagram: 1400, PageJitterMS: 9.2, FCSBad: 1}}},
			[]string{"T.38 sent: 280 datagrams, 0 lost (0 recovered from redundancy, 0 beyond repair), longest burst 0 against redundancy 3, largest 212 octets — over the 160 the receiver takes, jitter 1.3 ms",
				"T.38 received: 291 datagrams, 9 lost (6 recovered from redundancy, 3 beyond repair), longest burst 4 against redundancy 3, largest 244 octets of the 1400 the receiver takes, jitter 9.2 ms, 1 bad frames",
				"switch to T.38 took 120 ms"}},
		{job.MediaReport{Transport: "g711", RTP: &job.RTPReport{
			Sent:     job.RTPDirection{Packets: 1500, Expected: 1500, JitterMS: 0.5, MaxJitterMS: 1},
			Received: job.RTPDirection{Packets: 1497, Expected: 1500, Lost: 3, LossPct: 0.2, JitterMS: 31.5, MaxJitterMS: 40}}},
			[]string{"G.711 sent: 1500 packets, 0 lost (0.00%), jitter 0.5 ms (at most 1.0 ms)",
				"G.711 received: 1497 packets, 3 lost (0.20%), jitter 31.5 ms (at most 40.0 ms)"}},
		{job.MediaReport{Unavailable: "no capture permission (CAP_NET_RAW)"}, []string{"not measured: no capture permission (CAP_NET_RAW)"}},
	} {
		b, _ := json.Marshal(c.m)
		got := eval[[]string](p, `mediaWords(`+string(b)+`)`)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("media report %s reads\n%q\nwant\n%q", b, got, c.want)
		}
	}
}

// selfTestButton runs the self-test from the Lines tab (on this box, the
// test line) and follows it to its result, which must be the box's; a
// second start while one runs is refused in words.
func selfTestButton(t *testing.T, p *page, e *testbox.Env) {
	p.tab("lines")
	p.wait("no self-test yet", `document.getElementById("selftest-state").textContent.includes("No self-test has run yet.")`, 10*time.Second)
	p.do("run the self-test", chromedp.Click(chromedp.ID("selftest-btn")))
	p.wait("running", `document.getElementById("selftest-state").dataset.status === "running" && document.getElementById("selftest-btn").disabled`, 10*time.Second)
	p.wait("passed", `document.getElementById("selftest-state").dataset.status === "passed"`, 60*time.Second)
	var run selftest.Run
	e.C.Do(t, "GET", "/v1/selftest", nil, "", &run)
	shown := text(p, "selftest-state")
	if run.Status != selftest.Passed || run.Path != "test_line" || run.Attempt == nil {
		t.Fatalf("the box's self-test: %+v", run)
	}
	for _, want := range []string{"Passed", "on the test line", fmt.Sprintf("%d sent", run.PagesSent), run.JobID, run.Attempt.Line.String(), run.Attempt.Decision} {
		if !strings.Contains(shown, want) {
			t.Errorf("the self-test reads %q, lacks %q", shown, want)
		}
	}
	if eval[bool](p, `document.getElementById("selftest-btn").disabled`) {
		t.Errorf("the self-test button stays disabled after the run")
	}
	p.shot("lines-selftest")

	// One started elsewhere (the API, the panel) while the page still shows
	// the last: the button's start is refused, and the page follows that run.
	if resp := e.C.Do(t, "POST", "/v1/selftest", nil, "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/selftest: %d", resp.StatusCode)
	}
	p.do("run it again", chromedp.Click(chromedp.ID("selftest-btn")))
	p.wait("the refusal", `document.getElementById("selftest-msg").classList.contains("err")`, 10*time.Second)
	if msg := text(p, "selftest-msg"); !strings.Contains(msg, "A self-test is already running") || !strings.Contains(msg, "(run_in_progress)") {
		t.Errorf("a second start reads %q", msg)
	}
	p.wait("that run's result", `document.getElementById("selftest-state").dataset.status === "passed"`, 60*time.Second)
	var again selftest.Run
	e.C.Do(t, "GET", "/v1/selftest", nil, "", &again)
	if again.JobID == run.JobID || !strings.Contains(text(p, "selftest-state"), again.JobID) {
		t.Errorf("the page shows %q, not the second run %s", text(p, "selftest-state"), again.JobID)
	}
}

// receive records a received fax of pages pages from caller as the box's
// receiving service does for Asterisk (the TIFF copied, its PDF made and
// checked, the record stored, fax.received published).
func receive(t *testing.T, e *testbox.Env, uid, caller string, pages int) *inbox.Fax {
	t.Helper()
	dir := t.TempDir()
	tif := filepath.Join(dir, "rx-"+uid+".tif")
	if err := os.WriteFile(tif, testkit.FaxTIFF(t, pages), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := receiving.New(receiving.Config{Store: e.Box.Store, Source: rxSource{}, Bus: e.Box.Bus})
	defer svc.Close()
	now := time.Now()
	f, err := svc.Record(context.Background(), inbox.Reception{UniqueID: uid, File: tif, Status: "SUCCESS", Pages: pages,
		CallerID: caller, DID: "500", Mode: "T38", RemoteStationID: "+49 30 " + caller, Started: now.Add(-40 * time.Second), Ended: now}, false)
	if err != nil || f == nil || f.Status != inbox.Received || !f.PDF {
		t.Fatalf("recording the reception: %+v %v", f, err)
	}
	return f
}

// rxSource is Asterisk's side of receptions; Record needs none of it.
type rxSource struct{}

func (rxSource) Reception(ami.Message) (inbox.Reception, bool) { return inbox.Reception{}, false }
func (rxSource) Kept(context.Context, string) (inbox.Reception, bool) {
	return inbox.Reception{}, false
}
func (rxSource) KeptAll(context.Context) ([]inbox.Reception, error) { return nil, nil }
func (rxSource) Live(context.Context) (map[string]bool, error)      { return nil, nil }
func (rxSource) File(uid string) string                             { return "" }

// inboxBadge: the Inbox tab counts the unread received faxes, live as they
// arrive (fax.received), and down as they are read.
func inboxBadge(t *testing.T, p *page, e *testbox.Env) {
	p.tab("lines")
	if c := text(p, "inbox-count"); c != "" {
		t.Errorf("the inbox badge reads %q before any fax was received", c)
	}
	first := receive(t, e, "1733200000.1", "0301234567", 2)
	p.wait("one unread", `document.getElementById("inbox-count").textContent === "1"`, 10*time.Second)
	receive(t, e, "1733200000.2", "0307654321", 1)
	p.wait("two unread", `document.getElementById("inbox-count").textContent === "2"`, 10*time.Second)
	if l := eval[string](p, `document.getElementById("inbox-tab").getAttribute("aria-label")`); l != "Inbox, 2 unread" {
		t.Errorf("the inbox tab's label is %q", l)
	}
	if !eval[bool](p, `!document.getElementById("tab-lines").hidden`) {
		t.Errorf("the page left the lines tab")
	}
	eval[bool](p, `(() => { window.scrollTo(0, 0); return true; })()`)
	p.shot("inbox-badge")
	p.tab("inbox")
	p.wait("the received faxes", `document.querySelectorAll("#inbox tr.unread").length === 2`, 10*time.Second)
	p.do("mark the first read", chromedp.Click(chromedp.CSS(`#inbox tr[data-id="`+string(first.ID)+`"] button[aria-label^="Mark read"]`)))
	p.wait("one unread", `document.getElementById("inbox-count").textContent === "1" && document.querySelectorAll("#inbox tr.unread").length === 1`, 10*time.Second)
	var l struct{ Items []inbox.Fax }
	e.C.Do(t, "GET", "/v1/inbox?read=false", nil, "", &l)
	if len(l.Items) != 1 || l.Items[0].ID == first.ID {
		t.Errorf("the box has unread %+v, want only the second", l.Items)
	}
	p.do("view the second", chromedp.Click(chromedp.CSS(`#inbox tr.unread button[aria-label^="View"]`)))
	p.wait("its PDF", `document.getElementById("viewer").open && document.getElementById("viewer").dataset.type === "application/pdf"`, 20*time.Second)
	p.do("close it", chromedp.Click(chromedp.ID("viewer-close")))
	p.wait("none unread", `document.getElementById("inbox-count").textContent === "" && !document.getElementById("inbox-tab").hasAttribute("aria-label")`, 10*time.Second)
}

// noPhoneBook: on a box without a directory a name in the number field is
// refused in words, no matches are offered, and nothing is sent.
func noPhoneBook(t *testing.T, p *page) {
	e := testbox.Start(t, nil)
	if resp := e.C.Do(t, "GET", "/v1/directory?q=M%C3%BCller", nil, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /v1/directory on a box without one: %d", resp.StatusCode)
	}
	p.do("open the other box", chromedp.Navigate(e.C.Base+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	p.do("sign in", chromedp.SendKeys(chromedp.ID("token"), testbox.Token+"\r"))
	p.wait("the console", `!document.getElementById("app").hidden`, 15*time.Second)
	p.tab("send")
	if h := text(p, "to-help"); strings.Contains(h, "phone book") {
		t.Errorf("the help offers a phone book on a box without one: %q", h)
	}
	eval[bool](p, `(() => { const dt = new DataTransfer(); dt.items.add(new File(["hello\n"], "hello.txt"));
	  document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })); return true; })()`)
	p.do("send without a number", chromedp.Click(chromedp.ID("send-btn")))
	p.wait("the refusal", `/Enter the fax number/.test(document.getElementById("send-msg").textContent) && document.activeElement.id === "to"`, 10*time.Second)
	p.do("type a name", chromedp.Click(chromedp.ID("to")), chromedp.SendKeys(chromedp.ID("to"), "Müller"))
	time.Sleep(600 * time.Millisecond) // longer than the matches take to come
	if !eval[bool](p, `document.getElementById("to-list").hidden`) {
		t.Errorf("matches offered on a box without a phone book")
	}
	p.do("send", chromedp.Click(chromedp.ID("send-btn")))
	p.wait("the refusal", `document.getElementById("send-msg").classList.contains("err")`, 10*time.Second)
	if msg := text(p, "send-msg"); !strings.Contains(msg, "this box has no phone book") {
		t.Errorf("a name on a box without a phone book: %q", msg)
	}
	if n := len(e.Jobs(t, job.KindFax)); n != 0 {
		t.Errorf("%d faxes queued", n)
	}
	// Digits work as before (spaces and dashes as people write them).
	p.do("send to digits", setv("to", "9999 0001"), chromedp.Click(chromedp.ID("send-btn")))
	id := p.sentID()
	if j := e.C.WaitJob(t, "/v1/faxes/"+id, job.Delivered, 30*time.Second, true); j.To != "99990001" {
		t.Errorf("the fax went to %q", j.To)
	}
}
