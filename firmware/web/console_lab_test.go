//go:build lab

package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// The console test drives the real console in real headless Chromium
// against a real box (test line only) and checks what a person would see.
// It needs chromium (tools/deps.sh test), so it carries the lab tag.

// page is one browser tab on the console.
type page struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots
}

// browser starts headless Chromium (without its sandbox when root, as in
// CI) and returns a tab; it is closed when the test ends.
func browser(t *testing.T) *page {
	t.Helper()
	testkit.Require(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()), chromedp.DisableGPU,
		chromedp.Flag("lang", "en-US"), chromedp.Flag("disable-quic", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 6*time.Minute)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	dir := os.Getenv("FAXBOX_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", dir)
	return &page{t: t, ctx: ctx, dir: dir}
}

// do runs browser actions; a failure ends the test with a screenshot.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.fail(what, err)
	}
}

func (p *page) fail(what string, err error) {
	p.t.Helper()
	p.shot("failure-" + regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(what), "-"))
	body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`))
	p.t.Fatalf("%s: %v\npage text:\n%.3000s", what, err, body)
}

// wait polls a JavaScript expression until it is truthy (at most d).
func (p *page) wait(what, expr string, d time.Duration) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		p.fail("waiting for "+what, err)
	}
}

// eval returns a JavaScript expression's value.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail("evaluating "+expr, err)
	}
	return v
}

// shot stores a screenshot of the viewport as name.png.
func (p *page) shot(name string) string {
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
	}
	return path
}

// setv sets the value of the form field with id as typing would (input
// and change events); unlike chromedp.SetValue it can empty a field.
func setv(id, v string) chromedp.Action[chromedp.Void] {
	val, _ := json.Marshal(v)
	js := fmt.Sprintf(`(() => { const f = document.getElementById(%q); f.value = %s;
	  f.dispatchEvent(new Event("input", { bubbles: true })); f.dispatchEvent(new Event("change", { bubbles: true })); return true; })()`, id, val)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](js)(ctx, t)
		return chromedp.Void{}, err
	}
}

// tab opens a section of the console by its tab link.
func (p *page) tab(name string) {
	p.t.Helper()
	p.do("open "+name, chromedp.Click(chromedp.CSS(`.tabs a[data-tab="`+name+`"]`)))
	p.wait(name, `!document.getElementById("tab-`+name+`").hidden`, 5*time.Second)
}

// openOptions unfolds the send form's options.
func (p *page) openOptions() {
	eval[bool](p, `document.getElementById("send-options").open = true`)
}

// row is the JavaScript for the row of job id in table tbody.
func row(tbody, id string) string {
	return fmt.Sprintf(`document.querySelector('#%s tr[data-id="%s"]')`, tbody, id)
}

// sentID reads the job id from the send form's confirmation.
func (p *page) sentID() string {
	p.t.Helper()
	p.wait("the fax to be queued", `/queued/.test(document.getElementById("send-msg").textContent)`, 30*time.Second)
	msg := eval[string](p, `document.getElementById("send-msg").textContent`)
	id := regexp.MustCompile(`fx_[0-9a-z]{26}`).FindString(msg)
	if id == "" {
		p.t.Fatalf("no job id in %q", msg)
	}
	return id
}

// TestConsoleInChromium signs in, previews and sends a 2-page PDF (and a
// dropped text file) to the test line's 99990001 and watches it reach
// delivered live, sees 99990002's failure explained, cancels a scheduled
// fax, makes a line busy, places a call, and checks the error messages,
// the phone book in the number fields, the media health and the settings
// an attempt was made with, the self-test, the inbox with its unread
// count, a phone-sized layout, and a box without a phone book.
func TestConsoleInChromium(t *testing.T) {
	e := consoleBox(t, func(c *config.Config) {
		// Slow enough pages that the live progress can be watched.
		c.TestLine.PageTime = job.Duration(600 * time.Millisecond)
	})
	pdf := filepath.Join(t.TempDir(), "letter.pdf")
	if err := os.WriteFile(pdf, testkit.PDF(t, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	p := browser(t)
	signIn(t, p, e)
	watchOutbox(p)

	id := sendDelivered(t, p, e, pdf)
	failed := sendBusy(t, p, e)
	cancelScheduled(t, p, e)
	history(t, p, id, failed)
	makeBusy(t, p, e)
	calls(t, p)
	phoneBookSend(t, p, e)
	phoneBookCalls(t, p)
	mediaHealth(t, p, e, id)
	mediaReports(t, p)
	selfTestButton(t, p, e)
	inboxBadge(t, p, e)
	inboxTab(t, p, e)
	phone(t, p)
	if problems := eval[[]string](p, `window.problems`); len(problems) != 0 {
		t.Errorf("the page reported: %q", problems)
	}
	noPhoneBook(t, p)
}

func signIn(t *testing.T, p *page, e *testbox.Env) {
	p.do("open the console", chromedp.Navigate(e.C.Base+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	// A wrong token is refused in words.
	p.do("sign in with a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-the-token"), chromedp.Click(chromedp.ID("signin-btn")))
	p.wait("the refusal", `/not accepted/.test(document.getElementById("signin-msg").textContent) && !document.getElementById("signin").hidden`, 10*time.Second)
	p.do("sign in", setv("token", ""), chromedp.SendKeys(chromedp.ID("token"), testbox.Token+"\r"))
	p.wait("the console", `!document.getElementById("app").hidden && document.getElementById("live").classList.contains("on")`, 15*time.Second)
	// Anything the content security policy blocks, and script errors, are
	// collected from here on and must stay empty.
	eval[bool](p, `(() => {
	  window.problems = [];
	  document.addEventListener("securitypolicyviolation", (e) => problems.push("CSP " + e.violatedDirective + " " + e.blockedURI));
	  window.addEventListener("error", (e) => problems.push("error " + e.message));
	  window.addEventListener("unhandledrejection", (e) => problems.push("rejection " + e.reason));
	  return true;
	})()`)
	if got := eval[string](p, `sessionStorage.getItem("faxbox-token")`); got != testbox.Token {
		t.Errorf("sessionStorage holds %q, want the token", got)
	}
	if strings.Contains(eval[string](p, `location.href`), testbox.Token) || eval[string](p, `localStorage.length + ""`) != "0" {
		t.Errorf("the token is in the URL or in localStorage")
	}
}

// watchOutbox records, in the page, every state each outbox row shows, so
// the test can tell live progress from a final reload.
func watchOutbox(p *page) {
	eval[bool](p, `(() => {
	  window.seen = {};
	  const note = () => document.querySelectorAll("#outbox tr[data-id]").forEach((r) => {
	    const s = (window.seen[r.dataset.id] = window.seen[r.dataset.id] || []);
	    const v = r.dataset.status + "|" + r.querySelector('td[data-label="Progress"]').textContent;
	    if (s[s.length - 1] !== v) s.push(v);
	  });
	  new MutationObserver(note).observe(document.getElementById("outbox"), { childList: true, subtree: true });
	  return true;
	})()`)
}

func sendDelivered(t *testing.T, p *page, e *testbox.Env, pdf string) string {
	p.tab("send")
	p.do("choose the PDF", chromedp.SetUploadFiles(chromedp.ID("files"), []string{pdf}))
	// A second document, dropped on the drop zone as a browser does.
	eval[bool](p, `(() => {
	  const dt = new DataTransfer();
	  dt.items.add(new File(["A cover note, dropped on the page.\n"], "note.txt", { type: "text/plain" }));
	  const z = document.getElementById("drop");
	  z.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
	  z.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
	  return true;
	})()`)
	p.wait("two files listed", `document.querySelectorAll("#file-list li").length === 2`, 5*time.Second)
	p.do("preview", chromedp.SendKeys(chromedp.ID("to"), "99990001"), chromedp.Click(chromedp.ID("preview-btn")))
	p.wait("the preview", `document.querySelectorAll("#preview-pages img").length === 3`, 60*time.Second)
	if title := eval[string](p, `document.getElementById("preview-title").textContent`); !strings.Contains(title, "3 pages") {
		t.Errorf("preview title %q, want 3 pages", title)
	}
	if w := eval[int](p, `document.querySelector("#preview-pages img").naturalWidth`); w != 432 {
		t.Errorf("preview image %d pixels wide, want 432", w)
	}
	p.shot("send-preview")
	p.do("send", chromedp.Click(chromedp.ID("send-btn")))
	id := p.sentID()
	p.tab("outbox")
	p.wait("sending", row("outbox", id)+`?.dataset.status === "sending" || `+row("outbox", id)+`?.dataset.status === "delivered"`, 60*time.Second)
	p.shot("outbox-sending")
	p.wait("delivered", row("outbox", id)+`?.dataset.status === "delivered"`, 60*time.Second)
	p.shot("outbox-delivered")
	// Its converted pages, fetched with the token and shown from a blob: URL.
	p.do("show the pages", chromedp.Click(chromedp.CSS(`#outbox tr[data-id="`+id+`"] button[aria-label^="Show the pages"]`)))
	p.wait("the pages", `document.getElementById("viewer").open && document.getElementById("viewer-frame").src.startsWith("blob:")`, 30*time.Second)
	if typ := eval[string](p, `document.getElementById("viewer").dataset.type + " " + document.getElementById("viewer").dataset.size`); !strings.HasPrefix(typ, "application/pdf ") {
		t.Errorf("the pages viewer holds %q, want a PDF", typ)
	}
	p.do("close the pages", chromedp.Click(chromedp.ID("viewer-close")))
	seen := eval[[]string](p, `window.seen["`+id+`"] || []`)
	live := false
	for _, s := range seen {
		if strings.HasPrefix(s, "sending|") && strings.Contains(s, "page 2 of 3") {
			live = true
		}
	}
	if !live {
		t.Errorf("the outbox never showed the fax sending page 2 of 3 live; it showed %q", seen)
	}
	if got := e.C.WaitJob(t, "/v1/faxes/"+id, job.Delivered, 5*time.Second, true); got.Pages != 3 {
		t.Errorf("delivered job has %d pages, want 3", got.Pages)
	}
	return id
}

func sendBusy(t *testing.T, p *page, e *testbox.Env) string {
	pdf := filepath.Join(t.TempDir(), "one.pdf")
	os.WriteFile(pdf, testkit.PDF(t, 1), 0o644)
	p.tab("send")
	p.openOptions()
	p.do("a fax to the busy number", chromedp.SetUploadFiles(chromedp.ID("files"), []string{pdf}),
		setv("to", "99990002"),
		setv("max_attempts", "1"),
		chromedp.Click(chromedp.ID("send-btn")))
	id := p.sentID()
	p.tab("outbox")
	p.wait("failed", row("outbox", id)+`?.dataset.status === "failed"`, 60*time.Second)
	why := eval[string](p, row("outbox", id)+`.querySelector('td[data-label="Details"]').textContent`)
	if !strings.Contains(why, "The number was busy.") || !strings.Contains(why, "line.busy") {
		t.Errorf("the failure reads %q; want it explained (The number was busy, line.busy)", why)
	}
	if !eval[bool](p, row("outbox", id)+`.querySelector("button").textContent === "Retry"`) {
		t.Errorf("a failed fax offers no Retry")
	}
	p.shot("outbox-failed")
	return id
}

func cancelScheduled(t *testing.T, p *page, e *testbox.Env) {
	later := time.Now().Add(26 * time.Hour).Format("2006-01-02T15:04")
	p.tab("send")
	p.openOptions()
	eval[bool](p, `(() => { const dt = new DataTransfer(); dt.items.add(new File(["later\n"], "later.txt")); 
	  document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true })); return true; })()`)
	// A bad option first: the box's refusal is shown in words at its field.
	p.do("send with a bad retry interval", setv("to", "99990001"),
		setv("max_attempts", ""),
		setv("retry_interval", "soon"), chromedp.Click(chromedp.ID("send-btn")))
	p.wait("the refusal", `document.getElementById("send-msg").classList.contains("err")`, 15*time.Second)
	msg := eval[string](p, `document.getElementById("send-msg").textContent`)
	if !strings.Contains(msg, "A field has a value the box does not accept.") || !strings.Contains(msg, "retry_interval") ||
		!eval[bool](p, `document.getElementById("retry_interval").getAttribute("aria-invalid") === "true" && document.activeElement.id === "retry_interval"`) {
		t.Errorf("bad retry_interval: message %q, field not marked or focused", msg)
	}
	p.do("send it for tomorrow", setv("retry_interval", ""),
		setv("send_at", later), chromedp.Click(chromedp.ID("send-btn")))
	id := p.sentID()
	p.tab("outbox")
	p.wait("scheduled", row("outbox", id)+`?.textContent.includes("scheduled for")`, 15*time.Second)
	// The outbox re-renders its rows on every live event: a click that
	// lands while the row is replaced is lost, as it would be for a person,
	// who clicks again.
	cancelled := row("outbox", id) + `?.dataset.status === "cancelled"`
	for try := 1; ; try++ {
		eval[bool](p, `(() => { const b = document.querySelector('#outbox tr[data-id="`+id+`"] button.danger'); if (b) b.click(); return !!b; })()`)
		_, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](cancelled, chromedp.WithPollingTimeout(5*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			break
		}
		if try == 3 {
			p.fail("waiting for cancelled after 3 clicks on Cancel", err)
		}
	}
	var j job.Job
	e.C.Do(t, "GET", "/v1/faxes/"+id, nil, "", &j)
	if j.Status != job.Cancelled || j.SendAt == nil || j.SendAt.Before(time.Now().Add(25*time.Hour)) {
		t.Errorf("the box has the job %s, send_at %v; want cancelled, about 26 h ahead", j.Status, j.SendAt)
	}
}

func history(t *testing.T, p *page, delivered, failed string) {
	p.tab("history")
	p.wait("the history", row("history", delivered)+` && `+row("history", failed), 15*time.Second)
	p.do("filter failed", setv("h-status", "failed"), chromedp.Click(chromedp.ID("h-apply")))
	p.wait("only failed", `!`+row("history", delivered)+` && `+row("history", failed), 15*time.Second)
	p.do("search", setv("h-status", ""), chromedp.Click(chromedp.ID("h-apply")))
	p.wait("all again", row("history", delivered)+` !== null`, 15*time.Second)
	p.do("type a search", chromedp.SendKeys(chromedp.ID("h-search"), "busy"))
	p.wait("the search", `!`+row("history", delivered)+` && `+row("history", failed), 5*time.Second)
	p.do("details", chromedp.Click(chromedp.CSS(`#history tr[data-id="`+failed+`"] button[aria-label^="Details"]`)))
	p.wait("the details", `document.getElementById("details").open && document.getElementById("details-body").textContent.includes("The number was busy.")`, 10*time.Second)
	p.shot("history-details")
	p.do("close", chromedp.Click(chromedp.ID("details-close")))
}

func makeBusy(t *testing.T, p *page, e *testbox.Env) {
	p.tab("lines")
	p.wait("the lines", `document.querySelector('#lines tr[data-line="test/2"]')`, 10*time.Second)
	p.do("make test/2 busy", chromedp.Click(chromedp.CSS(`#lines tr[data-line="test/2"] button`)))
	p.wait("out of service", `document.querySelector('#lines tr[data-line="test/2"]').textContent.includes("Out of service")`, 10*time.Second)
	var l struct {
		Lines []struct {
			Group string
			Index int
			Busy  bool `json:"busied_out"`
		}
	}
	e.C.Do(t, "GET", "/v1/lines", nil, "", &l)
	for _, x := range l.Lines {
		if x.Group == "test" && x.Busy != (x.Index == 2) {
			t.Errorf("line test/%d busied out %v on the box", x.Index, x.Busy)
		}
	}
	if !eval[bool](p, `document.getElementById("alarms").textContent.includes("No alarms.") || document.querySelector("#alarms li.alarm") !== null`) {
		t.Errorf("the lines tab shows no alarm state")
	}
	p.shot("lines")
	// Put it back with the keyboard: the button has the focus after the change.
	if eval[string](p, `document.activeElement.textContent`) != "Put back in service" {
		t.Errorf("focus is on %q after making the line busy", eval[string](p, `document.activeElement.textContent`))
	}
	p.do("put it back", chromedp.KeyEvent("\r"))
	p.wait("back in service", `document.querySelector('#lines tr[data-line="test/2"]').textContent.includes("Idle")`, 10*time.Second)
}

func calls(t *testing.T, p *page) {
	p.tab("calls")
	p.do("a click-to-call", chromedp.SendKeys(chromedp.ID("c2c-agent"), "99990001"), chromedp.SendKeys(chromedp.ID("c2c-to"), "99990001"),
		chromedp.Click(chromedp.ID("c2c-btn")))
	p.wait("the call queued", `/queued/.test(document.getElementById("c2c-msg").textContent)`, 15*time.Second)
	cid := regexp.MustCompile(`cl_[0-9a-z]{26}`).FindString(eval[string](p, `document.getElementById("c2c-msg").textContent`))
	p.wait("the call's result", row("calls", cid)+`?.dataset.status === "delivered"`, 30*time.Second)
	p.do("an alert call to a busy number", chromedp.SendKeys(chromedp.ID("m-to"), "99990002"),
		chromedp.SendKeys(chromedp.ID("m-say"), "The server room is too hot."),
		chromedp.Click(chromedp.CSS("#msg-form details summary")), setv("m-max_attempts", "1"),
		chromedp.Click(chromedp.ID("msg-btn")))
	p.wait("the alert queued", `/queued/.test(document.getElementById("msgcall-msg").textContent)`, 15*time.Second)
	mid := regexp.MustCompile(`cl_[0-9a-z]{26}`).FindString(eval[string](p, `document.getElementById("msgcall-msg").textContent`))
	p.wait("the alert's failure", row("calls", mid)+`?.dataset.status === "failed"`, 30*time.Second)
	if why := eval[string](p, row("calls", mid)+`.textContent`); !strings.Contains(why, "busy") {
		t.Errorf("the failed alert call reads %q", why)
	}
	// An international number is refused with the box's reason.
	p.do("a denied number", setv("c2c-to", "0044201234567"), chromedp.Click(chromedp.ID("c2c-btn")))
	p.wait("the refusal", `document.getElementById("c2c-msg").classList.contains("err")`, 15*time.Second)
	if msg := eval[string](p, `document.getElementById("c2c-msg").textContent`); !strings.Contains(msg, "That number may not be called.") {
		t.Errorf("denied number: %q", msg)
	}
	p.shot("calls")
}

func inboxTab(t *testing.T, p *page, e *testbox.Env) {
	resp := e.C.Do(t, "GET", "/v1/inbox", nil, "", nil)
	p.tab("inbox")
	if resp.StatusCode == http.StatusNotFound {
		p.wait("receiving not available", `document.getElementById("inbox-state").textContent.includes("Receiving is not available")`, 10*time.Second)
		return
	}
	p.wait("the inbox", `document.getElementById("inbox-state").textContent !== "" || document.querySelector("#inbox tr")`, 10*time.Second)
	if msg := eval[string](p, `document.getElementById("inbox-msg").textContent`); msg != "" {
		t.Errorf("inbox: %s", msg)
	}
}

// phone checks the layout at a phone's width: no sideways scrolling, the
// outbox stacked as cards.
func phone(t *testing.T, p *page) {
	p.do("a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	p.tab("outbox")
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px the page is %d px wide", w)
	}
	if d := eval[string](p, `getComputedStyle(document.querySelector("#outbox td")).display`); d != "block" {
		t.Errorf("outbox cells display %q on a phone, want block (stacked)", d)
	}
	p.shot("phone-outbox")
	b, _ := json.Marshal(eval[[]string](p, `[...document.querySelectorAll("#outbox tr")].map((r) => r.dataset.status)`))
	t.Logf("outbox on the phone: %s", b)
}
