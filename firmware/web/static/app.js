// faxbox web console. Plain JavaScript, no framework, no network but the
// box's own API. The API token lives in sessionStorage (this tab only) and
// travels in the Authorization header, never in a URL.
"use strict";

const TOKEN_KEY = "faxbox-token";
const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  jobs: new Map(),   // fax jobs by id (outbox and what the stream brought)
  calls: new Map(),  // call jobs by id
  lines: new Map(),  // line states by "group/n"
  status: null,      // the last /v1/status
  files: [],         // documents chosen for the next fax
  history: { items: [], cursor: "" },
  stream: null,      // AbortController of the event stream
};

// ---------- words ----------

const STATUS_WORDS = {
  queued: "Queued", converting: "Converting pages", ready: "Waiting for a free line", dialing: "Dialling",
  sending: "Sending", retry_wait: "Waiting to try again", delivered: "Delivered", failed: "Failed",
  cancelled: "Cancelled",
};
const CALL_STATUS_WORDS = Object.assign({}, STATUS_WORDS, { ready: "Waiting for a free line", sending: "In the call", delivered: "Completed" });

const LINE_WORDS = {
  idle: "Idle", dialing: "Dialling", ringing: "Ringing", answered: "Answered", sending: "Sending",
  busied_out: "Out of service (made busy)", down: "Down",
};

// What a job's error code means, in words.
const FAILURE_WORDS = {
  "line.busy": "The number was busy.",
  "line.no_answer": "Nobody answered.",
  "line.congestion": "The network was congested; the call did not get through.",
  "line.rejected": "The call was rejected by the network or the remote side.",
  "line.invalid_number": "The number does not exist or is not valid.",
  "line.unavailable": "No line was available to place the call.",
  "line.dropped": "The call dropped.",
  "line.interrupted": "The call was interrupted.",
  "line.no_line_for_number": "No line of the box can dial this number.",
  "line.rejected_destination": "The box's destination rules refuse this number.",
  "fax.negotiation": "The fax machines could not agree on how to send.",
  "fax.training": "The line was too poor to send the fax (training failed).",
  "fax.t38_negotiation": "T.38 (fax over IP) could not be set up.",
  "fax.remote_not_fax": "A person or voice system answered, not a fax machine.",
  "fax.page_errors": "The remote fax machine reported errors on the pages.",
  "fax.remote_hangup": "The remote fax machine hung up during the transfer.",
  "fax.timeout": "The fax transfer timed out.",
  "fax.protocol": "The fax transfer failed (protocol error).",
  "fax.engine": "The box's fax engine failed during the call.",
  "call.agent_no_answer": "Your phone did not answer.",
  "call.customer_busy": "The number called was busy.",
  "call.customer_no_answer": "The number called did not answer.",
  "call.not_acknowledged": "The message was heard but nobody pressed the confirm key.",
  "call.pin_rejected": "The caller entered a wrong PIN.",
  "call.destination_refused": "That destination may not be called.",
  "box.document_access": "The box could not read its own copy of the document; it will try again.",
  "document.unreadable": "The document cannot be read (damaged, encrypted or not what it claims to be).",
  "document.too_many_pages": "The document has too many pages.",
  "document.too_large": "A page or image of the document is too large.",
  "document.unsupported": "The document type is not supported.",
  "document.conversion_timeout": "Converting the document took too long.",
  "document.missing": "The document's file is missing on the box.",
  "job.expired": "The fax could not be sent before its deadline.",
  "job.max_attempts": "Every attempt failed.",
  "job.cancelled": "The fax was cancelled.",
  "internal.error": "The box had an internal error.",
  "selftest.pages_mismatch": "The box received a different number of pages than it sent.",
  "selftest.nothing_received": "The box's receiving side got nothing.",
  "selftest.no_loop": "The loop back to the box itself is not set up.",
  "selftest.interrupted": "The self-test was interrupted (the box stopped while it ran).",
  "selftest.timeout": "The self-test did not end in time.",
};

// What an API error code means, in words.
const API_WORDS = {
  unauthorized: "The API token was not accepted.",
  forbidden: "This address may not use that endpoint.",
  busy: "The box is busy reading other uploads. Try again in a few seconds.",
  client_ref_conflict: "Your reference was already used for a different fax.",
  cross_site_request: "The request was refused because it came from another site.",
  destination_not_allowed: "That number may not be called.",
  context_not_allowed: "That dial context is not allowed.",
  disk_full: "The box's disk is full; nothing was accepted.",
  document_missing: "The converted document is missing on the box.",
  document_purged: "The documents were deleted after the retention period.",
  document_type_mismatch: "A file's name says one type but its content is another.",
  duplicate_field: "A field was given twice.",
  empty_document: "A file is empty.",
  field_too_long: "A field is too long.",
  internal: "The box had an internal error.",
  storage_error: "The box could not store the request.",
  conversion_failed: "The box could not convert the documents.",
  invalid_field: "A field has a value the box does not accept.",
  invalid_number: "The number is not valid (3 to 20 digits, optionally with a leading +).",
  invalid_request: "The request was not understood.",
  invalid_url: "The callback URL is not allowed.",
  missing_field: "A required field is empty.",
  missing_file: "Choose at least one document.",
  no_line_for_number: "No line of the box can dial this number.",
  not_converted: "The document is not converted yet.",
  not_found: "Not found on the box.",
  rejected_destination: "The box's destination rules refuse this number.",
  request_timeout: "The upload was too slow and was cut off.",
  too_large: "The upload is too large.",
  too_many_fields: "The request has too many fields.",
  too_many_files: "Too many files for one fax (at most 20).",
  too_many_pages: "The documents have too many pages.",
  document_too_large: "A page or image is too large.",
  conversion_timeout: "Converting the documents took too long.",
  unknown_field: "The box does not know one of the fields.",
  unreadable_document: "A document cannot be read.",
  unsupported_document: "A file is not a PDF, TIFF, PNG, JPEG or text document.",
  unsupported_recording: "The recording must be a WAV or MP3 file.",
  already_finished: "That job has already ended.",
  already_delivered: "That fax was delivered; it is never sent twice.",
  not_retryable: "Only failed or cancelled jobs can be tried again.",
  ambiguous_name: "That name names more than one number in the phone book.",
  unknown_name: "That name is not in the phone book.",
  directory_unavailable: "The phone book cannot be read now (the directory server has not answered yet).",
  run_in_progress: "A self-test is already running; its result shows when it ends.",
  no_line: "No line is free for the self-test.",
};

// ---------- API ----------

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status; this.code = code; this.field = field || "";
  }
  // words is the error for people: what the code means, then the box's own message.
  words() {
    if (this.status === 0) return "The box cannot be reached. Check the network and that the box is on.";
    const known = API_WORDS[this.code];
    const detail = this.message && this.message !== known ? " The box says: " + this.message.replace(/\.?$/, ".") : "";
    return (known || "The box answered " + this.status + ".") + detail + (this.code ? " (" + this.code + ")" : "");
  }
}

function sentence(s) {
  s = String(s).trim();
  if (!s) return "";
  // A message starting with a field name (retry_interval …) keeps its case.
  if (!/^[a-z0-9]+_/.test(s)) s = s[0].toUpperCase() + s.slice(1);
  return /[.!?)]$/.test(s) ? s : s + ".";
}

async function errorFrom(r) {
  let code = "", msg = "", field = "";
  try {
    const b = await r.json();
    if (b && b.error) ({ code, message: msg, field } = b.error);
  } catch (_) { /* not JSON */ }
  return new ApiError(r.status, code || "http_" + r.status, msg || r.statusText, field);
}

// api calls the box: opts.json (a body sent as JSON), opts.form (FormData),
// opts.raw (return the Response). It throws ApiError; a 401 signs out.
async function api(method, path, opts = {}) {
  const headers = { Authorization: "Bearer " + state.token };
  let body;
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
  if (opts.form) body = opts.form;
  let r;
  try {
    r = await fetch(path, { method, headers, body, cache: "no-store", signal: opts.signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "unreachable", String(e.message || e));
  }
  if (!r.ok) {
    const err = await errorFrom(r);
    if (r.status === 401 && !opts.signingIn) signOut("Your token was not accepted any more. Sign in again.");
    throw err;
  }
  if (opts.raw) return r;
  if (r.status === 204) return null;
  return r.json();
}

// upload posts a multipart form with upload progress (fetch has none).
function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", path);
    x.setRequestHeader("Authorization", "Bearer " + state.token);
    x.responseType = "json";
    x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    x.upload.onload = () => onProgress(1);
    x.onerror = () => reject(new ApiError(0, "unreachable", "network error"));
    x.onload = () => {
      const b = x.response;
      if (x.status >= 200 && x.status < 300) { resolve(b); return; }
      const e = (b && b.error) || {};
      if (x.status === 401) signOut("Your token was not accepted any more. Sign in again.");
      reject(new ApiError(x.status, e.code || "http_" + x.status, e.message || x.statusText, e.field));
    };
    x.send(form);
  });
}

// ---------- small DOM helpers ----------

function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k === "text") n.textContent = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(n.dataset, v);
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false && k !== "") n.append(k instanceof Node ? k : String(k));
  return n;
}
function td(label, ...kids) { return el("td", { "data-label": label }, ...kids); }
function button(text, onclick, cls, label) {
  return el("button", { type: "button", class: "small " + (cls || ""), onclick, "aria-label": label }, text);
}
function when(t) {
  if (!t) return "";
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : d.toLocaleString();
}
function setMsg(id, text, kind) {
  const m = $(id);
  m.textContent = text || "";
  m.className = "msg" + (kind ? " " + kind : "");
}
// showError writes err in words into message id, and marks the form field it names.
function showError(id, err, form) {
  if (err && err.name === "AbortError") return;
  const words = err instanceof ApiError ? err.words() : "Something went wrong: " + err;
  setMsg(id, words, "err");
  if (form && err && err.field) {
    const f = form.querySelector('[name="' + CSS.escape(err.field) + '"]');
    if (f) {
      f.setAttribute("aria-invalid", "true");
      const d = f.closest("details");
      if (d) d.open = true;
      f.focus();
    }
  }
}
function clearInvalid(form) { form.querySelectorAll("[aria-invalid]").forEach((f) => f.removeAttribute("aria-invalid")); }
// keepFocus re-renders container with render and puts the keyboard focus
// back on the same button of the same row (rows keyed by data-id or
// data-line), so live updates do not throw a keyboard user out.
function keepFocus(container, render) {
  const a = document.activeElement;
  const tr = a && a.tagName === "BUTTON" && container.contains(a) ? a.closest("tr") : null;
  const key = tr ? tr.dataset.id || tr.dataset.line || "" : "";
  const idx = tr ? [...tr.querySelectorAll("button")].indexOf(a) : -1;
  render();
  if (!key) return;
  const row = [...container.querySelectorAll("tr")].find((r) => (r.dataset.id || r.dataset.line) === key);
  const b = row && row.querySelectorAll("button")[idx];
  if (b) b.focus();
}
function notice(text) { const n = $("notice"); n.textContent = text || ""; n.hidden = !text; }
function isoLocal(v) { return v ? new Date(v).toISOString() : ""; }

// errorWords tells a job's error in words, with the box's code.
function errorWords(e) {
  if (!e) return "";
  const w = FAILURE_WORDS[e.code] || sentence(e.message || e.code);
  return w + " (" + e.code + ")";
}

// ---------- phone book ----------

// The office directory's phone book (GET /v1/directory): the number fields
// of Send and Calls take a name too, offer the matches, and resolve a typed
// name the way `faxbox send -to NAME` does (bookPick). A box without a
// directory answers 404: then the fields take numbers only.
const book = { available: false };

// isNumber reports whether v is meant as a number (digits and the signs
// people write in numbers), not a name; the same rule as the CLI's.
function isNumber(v) { return /^[+0-9 ()./-]*$/.test(v); }
// plainNumber drops the signs people write in numbers (the directory's
// numbers come without them).
function plainNumber(v) { return v.replace(/[ ()./-]/g, ""); }
function foldName(s) { return String(s || "").toLowerCase().split(/\s+/).filter(Boolean).join(" "); }

// bookPick chooses the one number (kind "faxes" or "phones") q names among
// the entries a search for q found: an entry named exactly q (or of login
// q) when there is one, else every entry found; that must come to one
// number. It answers {number, name}, {candidates: [{number, name}]} or
// {none: true}.
function bookPick(q, entries, kind) {
  const withNum = entries.filter((e) => (e[kind] || []).length > 0);
  const exact = withNum.filter((e) => foldName(e.name) === foldName(q) || (e.login && e.login.toLowerCase() === q.toLowerCase()));
  const pool = exact.length ? exact : withNum;
  if (!pool.length) return { none: true };
  if (pool.length === 1 && pool[0][kind].length === 1) return { number: pool[0][kind][0], name: pool[0].name };
  return { candidates: pool.flatMap((e) => e[kind].map((n) => ({ number: n, name: e.name }))) };
}

async function bookSearch(q) {
  const r = await api("GET", "/v1/directory?q=" + encodeURIComponent(q));
  return r.entries || [];
}

// Combo is a number field with phone book matches below it (an ARIA
// combobox: arrows move, Enter chooses, Escape closes; a click chooses).
class Combo {
  constructor(id, kind, msgId) {
    this.input = $(id);
    this.list = document.getElementById(id + "-list");
    this.note = document.getElementById(id + "-book");
    this.kind = kind;       // "faxes" or "phones"
    this.msgId = msgId;
    this.options = [];
    this.active = -1;
    this.timer = 0;
    this.seq = 0;
    this.input.addEventListener("input", () => this.typed());
    this.input.addEventListener("keydown", (e) => this.key(e));
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }
  get what() { return this.kind === "faxes" ? "fax number" : "phone number"; }
  typed() {
    this.note.textContent = "";
    this.input.removeAttribute("aria-invalid");
    clearTimeout(this.timer);
    const q = this.input.value.trim();
    if (!book.available || q === "" || isNumber(q)) { this.close(); return; }
    this.timer = setTimeout(() => this.suggest(q), 200);
  }
  async suggest(q) {
    const seq = ++this.seq;
    try {
      const entries = await bookSearch(q);
      if (seq !== this.seq || this.input.value.trim() !== q) return;
      this.show(entries.flatMap((e) => (e[this.kind] || []).map((n) => ({ number: n, name: e.name }))), q);
    } catch (e) {
      if (seq !== this.seq) return;
      this.close();
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) { book.available = false; return; }
      this.note.textContent = "The phone book could not be searched: " + (e.words ? e.words() : String(e));
    }
  }
  show(options, q) {
    this.options = options.slice(0, 20);
    this.active = -1;
    this.list.textContent = "";
    this.options.forEach((o, i) => {
      const li = el("li", { role: "option", id: this.input.id + "-opt-" + i, "aria-selected": "false", dataset: { number: o.number } },
        el("span", { class: "name" }, o.name), el("span", { class: "num" }, o.number));
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); this.choose(o); });
      this.list.append(li);
    });
    if (!this.options.length) {
      this.close();
      this.note.textContent = "No " + this.what + " in the phone book matches “" + q + "”.";
      return;
    }
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }
  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.active = -1;
  }
  move(d) {
    if (this.list.hidden || !this.options.length) return;
    this.active = (this.active + d + this.options.length) % this.options.length;
    [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", i === this.active ? "true" : "false"));
    const li = this.list.children[this.active];
    this.input.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  }
  key(e) {
    if (e.key === "ArrowDown") { e.preventDefault(); if (this.list.hidden && this.options.length) { this.list.hidden = false; this.input.setAttribute("aria-expanded", "true"); } this.move(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); this.move(-1); }
    else if (e.key === "Escape" && !this.list.hidden) { e.preventDefault(); this.close(); }
    else if (e.key === "Enter" && !this.list.hidden && this.active >= 0) { e.preventDefault(); this.choose(this.options[this.active]); }
  }
  // choose puts o's number in the field and names whose it is.
  choose(o) {
    clearTimeout(this.timer);
    this.seq++;
    this.input.value = o.number;
    this.input.removeAttribute("aria-invalid");
    this.close();
    setMsg(this.msgId, "");
    this.note.textContent = "";
    this.note.append(el("span", { class: "ok" }, o.name + ", from the phone book"));
    this.input.focus();
  }
  // resolve returns the number to use, or "" after saying in message
  // msgId why there is none: a name is looked up in the phone book; one
  // naming several numbers is refused with the candidates to choose from.
  async resolve() {
    clearTimeout(this.timer);
    this.seq++;
    const v = this.input.value.trim();
    if (isNumber(v)) return plainNumber(v);
    const refuse = (text) => {
      setMsg(this.msgId, text, "err");
      this.input.setAttribute("aria-invalid", "true");
      this.input.focus();
      return "";
    };
    if (!book.available) return refuse("Enter the number as digits (3 to 20, optionally with a leading +): this box has no phone book to look “" + v + "” up in.");
    let entries;
    try { entries = await bookSearch(v); } catch (e) { showError(this.msgId, e); this.input.focus(); return ""; }
    const p = bookPick(v, entries, this.kind);
    if (p.number) {
      this.choose(p);
      return p.number;
    }
    if (p.none) return refuse("No " + this.what + " in the phone book for “" + v + "”" + (entries.length ? " (" + entries.length + " entries found without one)." : "."));
    this.close();
    this.note.textContent = "";
    this.note.append(el("p", { class: "err" }, "Choose one:"),
      el("ul", { class: "choices", "aria-label": "Numbers “" + v + "” names" }, p.candidates.map((c) =>
        el("li", {}, button(c.number + " — " + c.name, () => this.choose(c), "secondary", "Use " + c.number + ", " + c.name)))));
    return refuse("“" + v + "” names more than one " + this.what + ": choose one of the numbers shown at the field, or type the whole name.");
  }
  // available shows whether the field takes names.
  available(on) {
    this.input.inputMode = on ? "text" : "tel";
    if (this.kind === "phones") this.input.placeholder = on ? "number or name" : "";
  }
}

const combos = { to: new Combo("to", "faxes", "send-msg"), c2c: new Combo("c2c-to", "phones", "c2c-msg"), msg: new Combo("m-to", "phones", "msgcall-msg") };

// setBook records whether the box has a phone book (a directory in
// /v1/status) and tells the number fields.
function setBook(on) {
  book.available = on;
  for (const c of Object.values(combos)) c.available(on);
  $("to-help").textContent = "3 to 20 digits, optionally with a leading +" + (on ? ", or a name from the phone book." : ".");
}

// ---------- sign in / out ----------

async function signIn(token) {
  state.token = token;
  const s = await api("GET", "/v1/status", { signingIn: true });
  sessionStorage.setItem(TOKEN_KEY, token);
  state.status = s;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  notice("");
  setBook(!!(s.extra && s.extra.directory));
  renderStatus();
  await Promise.all([loadOutbox(), loadCalls(), loadUnread()]);
  startStream();
  route();
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.jobs.clear(); state.calls.clear(); state.lines.clear();
  $("app").hidden = true;
  $("signout").hidden = true;
  $("live").hidden = true;
  $("summary").textContent = "";
  setUnread("", "");
  $("signin").hidden = false;
  $("token").value = "";
  setMsg("signin-msg", why || "", why ? "err" : "");
  $("token").focus();
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (!t) { setMsg("signin-msg", "Enter the API token.", "err"); return; }
  $("signin-btn").disabled = true;
  setMsg("signin-msg", "Signing in…");
  try {
    await signIn(t);
  } catch (e) {
    state.token = "";
    setMsg("signin-msg", e instanceof ApiError && e.status === 401 ? "That token was not accepted. Check it and try again." : (e.words ? e.words() : String(e)), "err");
    $("token").focus();
  } finally {
    $("signin-btn").disabled = false;
  }
});
$("signout").addEventListener("click", () => signOut(""));

// ---------- tabs ----------

const TABS = ["send", "outbox", "history", "inbox", "lines", "calls"];
function route() {
  let tab = location.hash.slice(1);
  if (!TABS.includes(tab)) tab = "send";
  for (const t of TABS) {
    $("tab-" + t).hidden = t !== tab;
    const a = document.querySelector('.tabs a[data-tab="' + t + '"]');
    if (t === tab) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!state.token) return;
  if (tab === "history" && !state.history.loaded) loadHistory(false);
  if (tab === "inbox") loadInbox();
  if (tab === "lines") { loadStatus(); loadSelfTest(); }
  if (tab === "calls") loadCalls();
}
window.addEventListener("hashchange", () => { route(); $("main").focus(); });

// ---------- status, lines, alarms ----------

async function loadStatus() {
  try {
    state.status = await api("GET", "/v1/status");
    renderStatus();
    setMsg("lines-msg", "");
  } catch (e) { showError("lines-msg", e); }
}

function renderStatus() {
  const s = state.status;
  if (!s) return;
  state.lines.clear();
  for (const l of s.lines || []) state.lines.set(l.group + "/" + l.index, l);
  renderSummary();
  renderLines();
  renderAlarms();
  renderBoxInfo();
}

// renderSummary shows the version and, from what the event stream keeps
// current, the jobs not yet ended and the lines in a call.
function renderSummary() {
  if (!state.status) return;
  const active = [...state.jobs.values(), ...state.calls.values()].filter((j) => !TERMINAL.has(j.status)).length;
  const inCall = [...state.lines.values()].filter((l) => l.job_id).length;
  $("summary").textContent = "version " + state.status.version + " · " + active + " active, " + inCall + " in a call";
}

function renderLines() { keepFocus($("lines"), drawLines); }
function drawLines() {
  const body = $("lines");
  body.textContent = "";
  for (const l of state.lines.values()) {
    const id = l.group + "/" + l.index;
    const busy = !!l.busied_out;
    const job = l.job_id ? (state.jobs.get(l.job_id) || state.calls.get(l.job_id)) : null;
    body.append(el("tr", { dataset: { line: id } },
      td("Line", el("strong", {}, id), l.group === "test" ? el("span", { class: "sub" }, "test line (never dials)") : null),
      td("State", el("span", { class: "st " + l.state }, LINE_WORDS[l.state] || l.state)),
      td("Fax or call", l.to ? l.to : "", job ? el("span", { class: "sub mono" }, job.id) : (l.job_id ? el("span", { class: "sub mono" }, l.job_id) : null)),
      td("Page", l.pages ? "page " + l.page + " of " + l.pages : ""),
      td("Health", l.healthy === false ? el("span", { class: "alarm" }, "unhealthy") : el("span", { class: "healthy" }, "ok")),
      el("td", { class: "actions" },
        button(busy ? "Put back in service" : "Make busy", () => setLineBusy(l, !busy), busy ? "" : "danger",
          (busy ? "Put line " + id + " back in service" : "Make line " + id + " busy")))));
  }
}

async function setLineBusy(l, busy) {
  const id = l.group + "/" + l.index;
  try {
    const r = await api(busy ? "POST" : "DELETE", "/v1/lines/" + encodeURIComponent(l.group) + "/" + l.index + "/busy");
    for (const x of r.lines || []) state.lines.set(x.group + "/" + x.index, x);
    renderLines();
    setMsg("lines-msg", busy ? "Line " + id + " is out of service: the box places no calls on it." : "Line " + id + " is back in service.", "ok");
    const b = document.querySelector('tr[data-line="' + CSS.escape(id) + '"] button');
    if (b) b.focus();
  } catch (e) { showError("lines-msg", e); }
}

const ALARM_WORDS = {
  "asterisk unreachable": "The box cannot reach its telephony engine (Asterisk). No calls can be placed.",
  "asterisk cannot read documents": "The telephony engine cannot read the fax documents; faxes wait until this is fixed.",
  "trunk unqualified": "The SIP trunk does not answer its health checks.",
  "line card alarm": "A line card reports an alarm (check the cables).",
  "disk over 90%": "The box's disk is over 90% full.",
  "time not set": "The box's clock is not set.",
  "T.38 health bad": "Fax over IP (T.38) is failing more than it should.",
  "panel hardware missing": "The front panel hardware is missing.",
  "directory unreachable": "The office directory (LDAP) does not answer; the box uses its last good copy.",
  "fax routing failing": "Received faxes cannot be routed where the rules say.",
};

function renderAlarms() {
  const s = state.status, x = (s && s.extra) || {};
  const box = $("alarms");
  box.textContent = "";
  const alarms = x.alarms || [];
  if (alarms.length === 0) box.append(el("p", { class: "alarms-ok" }, "No alarms."));
  else box.append(el("ul", {}, alarms.map((a) => el("li", { class: "alarm" }, ALARM_WORDS[a] || sentence(a)))));
  const dl = el("dl", { class: "info" });
  const add = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
  if (x.trunk) add("SIP trunk", { reachable: "reachable", unreachable: "unreachable: it does not answer", unknown: "not checked yet" }[x.trunk] || x.trunk);
  else add("SIP trunk", s && s.asterisk_configured ? "none configured" : "none (only the test line: no Asterisk configured)");
  if (x.dahdi_alarms) add("Line cards", x.dahdi_alarms.length ? x.dahdi_alarms.join("; ") : "no alarms");
  if (x.directory) add("Directory", directoryWords(x.directory));
  if (x.webhooks_pending !== undefined) add("Callbacks waiting", String(x.webhooks_pending));
  box.append(dl);
  renderMediaHealth(x.media_health);
}

function directoryWords(d) {
  const n = d.entries + " phone book entries, " + d.users + " users";
  if (d.state === "ok") return "read " + when(d.last_sync) + ": " + n;
  if (d.state === "unreachable") return "does not answer" + (d.error ? " (" + d.error + ")" : "") + (d.last_sync ? "; using the copy of " + when(d.last_sync) + ": " + n : "");
  return "not read yet" + (d.error ? " (" + d.error + ")" : "");
}

function pct(v) { return (v || 0).toFixed(2) + "%"; }

// renderMediaHealth shows extra.media_health: per trunk (line group) the
// figures pooled over its last fax attempts with a media report, and
// whether they put the trunk in alarm.
function renderMediaHealth(h) {
  const box = $("media-health");
  box.textContent = "";
  if (!h) { box.append(el("p", { class: "empty" }, "This box does not measure fax media.")); return; }
  const trunks = h.trunks || [];
  box.dataset.alarm = h.alarm ? "true" : "false";
  if (!trunks.length) {
    box.append(el("p", { class: "empty" }, "No fax attempt with a media report yet: the figures appear after faxes over SIP lines."));
    return;
  }
  box.append(el("p", { class: h.alarm ? "alarm" : "alarms-ok" }, h.alarm
    ? "Fax over IP is failing more than it should: " + trunks.filter((t) => t.alarm).map((t) => t.trunk).join(", ") + "."
    : "Every trunk's fax media is within the limits."));
  const head = el("tr", {}, ["Trunk", "Attempts", "T.38 loss", "T.38 lost beyond repair", "G.711 loss", "G.711 jitter", "Health"].map((x) => el("th", { scope: "col" }, x)));
  const rows = trunks.map((t) => el("tr", { dataset: { trunk: t.trunk } },
    td("Trunk", el("strong", {}, t.trunk)),
    td("Attempts", String(t.attempts)),
    td("T.38 loss", pct(t.t38_loss_pct)),
    td("T.38 lost beyond repair", pct(t.t38_unrecoverable_pct)),
    td("G.711 loss", pct(t.rtp_loss_pct)),
    td("G.711 jitter", (t.rtp_jitter_ms || 0).toFixed(1) + " ms"),
    td("Health", t.alarm ? [el("span", { class: "alarm" }, "alarm"), ...(t.why || []).map((w) => el("span", { class: "sub" }, w))]
      : el("span", { class: "healthy" }, "ok"))));
  box.append(el("div", { class: "table-wrap" }, el("table", { class: "jobs" }, el("thead", {}, head), el("tbody", {}, rows))),
    el("p", { class: "help" }, "Pooled over each trunk's last fax attempts with a media report; the worse direction counts."));
}

// ---------- self-test ----------

const RUN_WORDS = { running: "Running…", passed: "Passed", failed: "Failed" };
const PATH_WORDS = {
  loopback: "through the box's telephony engine (Asterisk) and back to itself",
  test_line: "on the test line (this box has no telephony engine: the fax engine and conversion only)",
  trunk: "through the SIP trunk",
};
let selfTestTimer = 0;

// loadSelfTest shows the latest self-test (GET /v1/selftest) and follows
// a running one.
async function loadSelfTest() {
  clearTimeout(selfTestTimer);
  selfTestTimer = 0;
  try {
    renderSelfTest(await api("GET", "/v1/selftest"));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) { renderSelfTest(null, e); return; }
    showError("selftest-msg", e);
  }
}

function renderSelfTest(run, missing) {
  const box = $("selftest-state");
  box.textContent = "";
  $("selftest-btn").disabled = !!run && run.status === "running";
  if (!run) {
    delete box.dataset.status;
    box.append(el("p", { class: "empty" }, /no self-test has run/i.test((missing && missing.message) || "")
      ? "No self-test has run yet." : "This box runs no self-test."));
    return;
  }
  box.dataset.status = run.status;
  if (run.status !== "running" && $("selftest-msg").classList.contains("ok")) setMsg("selftest-msg", "");
  const dl = el("dl", { class: "info" });
  const add = (k, v) => { if (v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && !v.length)) dl.append(el("dt", {}, k), el("dd", {}, v)); };
  add("Result", el("span", { class: "st " + (run.status === "passed" ? "delivered" : run.status === "failed" ? "failed" : "sending") }, RUN_WORDS[run.status] || run.status));
  if (run.error) add("Why", errorWords(run.error));
  add("Path", PATH_WORDS[run.path] || run.path);
  add("Started", when(run.started_at));
  add("Ended", when(run.ended_at));
  add("Pages", run.pages_sent + " sent" + (run.pages_received !== undefined && run.pages_received !== null ? ", " + run.pages_received + " received" : ""));
  const a = run.attempt;
  if (a) {
    add("Call", [a.line, a.transport, a.bit_rate ? a.bit_rate + " bit/s" : "", a.ecm ? "ECM" : ""].filter(Boolean).join(", "));
    add("Media", mediaLines(a.media));
    add("Settings", a.decision);
  }
  add("Fax", el("span", { class: "mono" }, run.job_id));
  box.append(dl);
  if (run.status === "running") selfTestTimer = setTimeout(() => { if (state.token && !$("tab-lines").hidden) loadSelfTest(); }, 1000);
}

$("selftest-btn").addEventListener("click", async () => {
  $("selftest-btn").disabled = true;
  setMsg("selftest-msg", "Starting the self-test…");
  try {
    renderSelfTest(await api("POST", "/v1/selftest"));
    setMsg("selftest-msg", "The self-test is running; its result shows here.", "ok");
  } catch (e) {
    showError("selftest-msg", e);
    $("selftest-btn").disabled = false;
    loadSelfTest();
  }
});

function renderBoxInfo() {
  const s = state.status;
  const dl = $("boxinfo");
  dl.textContent = "";
  const add = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
  add("Version", s.version);
  add("Up for", s.uptime);
  if (s.disk) add("Free disk", (s.disk.free_bytes / 1e9).toFixed(1) + " GB" + (s.disk.low ? " (low: new faxes are refused)" : ""));
  if (s.jobs) add("Jobs stored", s.jobs.stored + " (" + s.jobs.active + " active)");
  if (s.test_line) add("Test line", "numbers starting " + s.test_line.prefix + " never dial; they simulate results");
  const dest = $("destinations");
  dest.textContent = "";
  const ds = s.destinations || [];
  if (!ds.length) { dest.append(el("p", { class: "empty" }, "No destination has calls up or a learned limit.")); return; }
  const rows = ds.map((d) => el("tr", {}, td("Number", d.number), td("Rule", d.rule || ""), td("Calls up", String(d.in_calls)),
    td("Limit", d.limit + (d.capped_since ? " (learned)" : ""))));
  const head = el("tr", {}, ["Number", "Rule", "Calls up", "Limit"].map((h) => el("th", { scope: "col" }, h)));
  dest.append(el("div", { class: "table-wrap" }, el("table", { class: "jobs" }, el("thead", {}, head), el("tbody", {}, rows))));
}

// ---------- send ----------

function addFiles(list) {
  for (const f of list) state.files.push(f);
  renderFiles();
  $("preview").hidden = true;
}

function renderFiles() {
  const ol = $("file-list");
  ol.textContent = "";
  state.files.forEach((f, i) => {
    ol.append(el("li", {},
      el("span", {}, f.name + " (" + Math.max(1, Math.round(f.size / 1024)) + " KB)"),
      i > 0 ? button("Up", () => moveFile(i, -1), "secondary", "Move " + f.name + " up") : null,
      i < state.files.length - 1 ? button("Down", () => moveFile(i, 1), "secondary", "Move " + f.name + " down") : null,
      button("Remove", () => { state.files.splice(i, 1); renderFiles(); }, "secondary", "Remove " + f.name)));
  });
}
function moveFile(i, d) {
  const f = state.files.splice(i, 1)[0];
  state.files.splice(i + d, 0, f);
  renderFiles();
}

const drop = $("drop");
drop.addEventListener("click", () => $("files").click());
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("files").click(); } });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
});
$("files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });

// sendFields lists the send form's option fields that POST /v1/faxes takes.
const SEND_FIELDS = ["resolution", "page_size", "header", "station_id", "line_group", "ecm", "t38", "max_attempts",
  "retry_interval", "priority", "client_ref", "callback_url", "notify_email"];
const PREVIEW_FIELDS = ["resolution", "page_size", "header", "station_id"];

function sendForm(fields, withTo) {
  const fd = new FormData();
  if (withTo) fd.append("to", $("to").value.trim());
  for (const f of state.files) fd.append("file", f, f.name);
  for (const k of fields) { const v = $(k).value.trim(); if (v !== "") fd.append(k, v); }
  if (withTo) for (const k of ["send_at", "expire_at"]) if ($(k).value) fd.append(k, isoLocal($(k).value));
  return fd;
}

function progress(stage, frac) {
  $("send-progress").hidden = stage === null;
  $("send-stage").textContent = stage || "";
  const bar = $("send-bar");
  if (frac === undefined) bar.removeAttribute("value"); else bar.value = Math.round(frac * 100);
}

// checkSend checks the form before an upload; withTo: the number too,
// which it resolves from the phone book when a name was typed.
async function checkSend(withTo) {
  const form = $("send-form");
  clearInvalid(form);
  if (!state.files.length) { setMsg("send-msg", "Choose or drop at least one document.", "err"); drop.focus(); return false; }
  if (!withTo) return true;
  const raw = $("to").value.trim();
  let to = plainNumber(raw);
  if (!isNumber(raw)) {
    to = await combos.to.resolve(); // a name: from the phone book, or refused in words
    if (!to) return false;
  }
  $("to").value = to;
  if (!/^\+?[0-9]{3,20}$/.test(to)) {
    setMsg("send-msg", "Enter the fax number: 3 to 20 digits, optionally with a leading +.", "err");
    $("to").setAttribute("aria-invalid", "true");
    $("to").focus();
    return false;
  }
  return true;
}

function busySend(on) { $("send-btn").disabled = on; $("preview-btn").disabled = on; }

$("preview-btn").addEventListener("click", async () => {
  if (!(await checkSend(false))) return;
  busySend(true);
  setMsg("send-msg", "");
  try {
    const p = await upload("/v1/preview", sendForm(PREVIEW_FIELDS, false), (f) =>
      f < 1 ? progress("Uploading… " + Math.round(f * 100) + "%", f) : progress("Converting the pages…"));
    renderPreview(p);
  } catch (e) {
    showError("send-msg", e, $("send-form"));
  } finally {
    progress(null); busySend(false);
  }
});

function renderPreview(p) {
  const box = $("preview-pages");
  box.textContent = "";
  const shown = p.images.length;
  $("preview-title").textContent = "Preview: " + p.pages + (p.pages === 1 ? " page" : " pages") +
    (shown < p.pages ? " (the first " + shown + " shown)" : "") + ", " + p.resolution + ", " + p.page_size.toUpperCase();
  for (const img of p.images) {
    box.append(el("figure", {}, el("img", { src: "data:image/png;base64," + img.png, width: img.width, height: img.height,
      alt: "Page " + img.page + " of " + p.pages + " as it will be faxed" }), el("figcaption", {}, "Page " + img.page)));
  }
  $("preview").hidden = false;
}

$("send-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  busySend(true);
  if (!(await checkSend(true))) { busySend(false); return; }
  setMsg("send-msg", "");
  try {
    const j = await upload("/v1/faxes", sendForm(SEND_FIELDS, true), (f) =>
      f < 1 ? progress("Uploading… " + Math.round(f * 100) + "%", f) : progress("Storing the fax on the box…"));
    state.jobs.set(j.id, j);
    renderOutbox();
    setMsg("send-msg", "Fax " + j.id + " to " + j.to + " is queued. Follow it in the outbox.", "ok");
    $("send-msg").append(" ", el("a", { href: "#outbox" }, "Open the outbox"));
    state.files = []; renderFiles();
    $("to-book").textContent = "";
    $("preview").hidden = true;
  } catch (e) {
    showError("send-msg", e, $("send-form"));
  } finally {
    progress(null); busySend(false);
  }
});

// ---------- outbox ----------

const TERMINAL = new Set(["delivered", "failed", "cancelled"]);
const RECENT_MS = 60 * 60 * 1000;

async function loadOutbox() {
  try {
    const l = await api("GET", "/v1/faxes?limit=200");
    for (const j of l.items) state.jobs.set(j.id, j);
    renderOutbox();
  } catch (e) { showError("outbox-msg", e); }
}

function inOutbox(j) {
  if (!TERMINAL.has(j.status)) return true;
  const t = Date.parse(j.completed_at || j.updated_at);
  return Date.now() - t < RECENT_MS;
}

function lineOf(j) {
  for (const l of state.lines.values()) if (l.job_id === j.id) return l;
  return null;
}

// scheduled reports whether j waits for its send_at, which lies ahead.
function scheduled(j) {
  return ["queued", "converting", "ready"].includes(j.status) && !!j.send_at && Date.parse(j.send_at) > Date.now();
}
function statusWords(j) { return scheduled(j) ? "Scheduled" : STATUS_WORDS[j.status] || j.status; }

function lastAttempt(j) { const a = j.attempts || []; return a.length ? a[a.length - 1] : null; }

// progressCell shows page n of m: live from the line while in a call, else the confirmed pages.
function progressCell(j) {
  const l = lineOf(j);
  if (l && l.pages) return [el("progress", { value: l.page, max: l.pages, "aria-label": "page " + l.page + " of " + l.pages }), "page " + l.page + " of " + l.pages];
  if (!j.pages) return j.status === "converting" ? [el("progress", { "aria-label": "converting" }), "converting"] : "";
  return [el("progress", { value: j.pages_confirmed, max: j.pages, "aria-label": j.pages_confirmed + " of " + j.pages + " pages sent" }),
    j.pages_confirmed + " of " + j.pages + " pages"];
}

function detailsText(j) {
  const parts = [];
  if (j.error) parts.push(el("span", { class: "why" }, errorWords(j.error)));
  else {
    const a = lastAttempt(j);
    if (a && a.error) parts.push(el("span", { class: "why" }, "Last try: " + errorWords(a.error)));
  }
  const last = lastAttempt(j);
  if (last && last.decision) parts.push(el("span", { class: "sub decision" }, "Settings: " + last.decision));
  if (j.status === "retry_wait" && j.next_attempt_at) parts.push(el("span", { class: "sub" }, "next try at " + when(j.next_attempt_at)));
  if (scheduled(j)) parts.push(el("span", { class: "sub" }, "scheduled for " + when(j.send_at)));
  if (j.status === "delivered") {
    const a = lastAttempt(j);
    parts.push(el("span", { class: "sub" }, "delivered " + when(j.completed_at) + (a && a.remote_station_id ? " to " + a.remote_station_id : "")));
  }
  if (j.client_ref) parts.push(el("span", { class: "sub" }, "ref " + j.client_ref));
  return parts;
}

function jobActions(j) {
  const cell = el("td", { class: "actions" });
  if (!TERMINAL.has(j.status)) cell.append(button("Cancel", () => cancelJob(j), "danger", "Cancel the fax to " + j.to));
  else if (j.status !== "delivered") cell.append(button("Retry", () => retryJob(j), "", "Send the fax to " + j.to + " again"));
  if (j.pages && !j.documents_purged) cell.append(button("Pages", () => viewDocument("/v1/faxes/" + j.id + "/document?format=pdf", "Fax " + j.id, j.id + ".pdf"), "secondary", "Show the pages of the fax to " + j.to));
  cell.append(button("Details", () => showDetails(j.id), "secondary", "Details of the fax to " + j.to));
  return cell;
}

function renderOutbox() { keepFocus($("outbox"), drawOutbox); }
function drawOutbox() {
  const body = $("outbox");
  const list = [...state.jobs.values()].filter(inOutbox).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  body.textContent = "";
  for (const j of list) {
    const l = lineOf(j);
    const a = lastAttempt(j);
    body.append(el("tr", { dataset: { id: j.id, status: j.status } },
      td("To", el("strong", {}, j.to), el("span", { class: "sub mono" }, j.id)),
      td("Status", el("span", { class: "st " + j.status }, statusWords(j))),
      td("Progress", progressCell(j)),
      td("Line", l ? l.group + "/" + l.index : (a && a.line ? a.line : "")),
      td("Attempts", (j.attempts || []).length + " of " + j.max_attempts),
      td("Details", detailsText(j)),
      jobActions(j)));
  }
  $("outbox-empty").hidden = list.length > 0;
  const active = list.filter((j) => !TERMINAL.has(j.status)).length;
  $("outbox-count").textContent = active ? String(active) : "";
}

async function cancelJob(j) {
  try {
    const r = await api("DELETE", "/v1/faxes/" + j.id);
    state.jobs.set(r.id, r);
    renderOutbox(); renderHistory();
    setMsg("outbox-msg", r.status === "cancelled" ? "The fax to " + j.to + " is cancelled." : "Hanging up the call to " + j.to + "…", "ok");
  } catch (e) { showError("outbox-msg", e); }
}

async function retryJob(j) {
  try {
    const r = await api("POST", "/v1/faxes/" + j.id + "/retry");
    state.jobs.set(r.id, r);
    renderOutbox(); renderHistory();
    setMsg("outbox-msg", "The fax to " + j.to + " is queued again.", "ok");
  } catch (e) { showError(location.hash === "#history" ? "history-msg" : "outbox-msg", e); }
}

// ---------- details and documents ----------

async function showDetails(id) {
  let j = state.jobs.get(id) || state.calls.get(id);
  try { j = await api("GET", (j && j.kind === "call" ? "/v1/calls/" : "/v1/faxes/") + id); } catch (_) { /* show what we have */ }
  const body = $("details-body");
  body.textContent = "";
  $("details-title").textContent = (j.kind === "call" ? "Call " : "Fax ") + j.id;
  const dl = el("dl", { class: "info" });
  const add = (k, v) => { if (v !== undefined && v !== null && v !== "") dl.append(el("dt", {}, k), el("dd", {}, v)); };
  add("To", j.to);
  add("Status", (STATUS_WORDS[j.status] || j.status) + (j.error ? " — " + errorWords(j.error) : ""));
  add("Created", when(j.created_at));
  add("Pages", j.pages ? j.pages_confirmed + " of " + j.pages + " sent" : "");
  add("Your reference", j.client_ref);
  add("Files", (j.files || []).map((f) => f.name + " (" + f.type + ")").join(", "));
  if (j.options) add("Options", j.options.resolution + ", " + j.options.page_size + ", ECM " + j.options.ecm + ", T.38 " + j.options.t38);
  add("Callback URL", j.callback_url);
  body.append(dl, el("h3", {}, "Attempts"));
  const rows = (j.attempts || []).map((a) => el("tr", {},
    td("#", String(a.n)), td("Line", a.line || ""), td("Started", when(a.started_at)),
    td("Result", a.result === "delivered" ? "delivered" : a.error ? errorWords(a.error) : a.result || ""),
    td("Pages sent", String(a.pages_sent || 0)),
    td("Link", [a.transport, a.bit_rate ? a.bit_rate + " bit/s" : "", a.max_rate ? "at most " + a.max_rate + " bit/s" : "", a.ecm ? "ECM" : "", a.remote_station_id].filter(Boolean).join(", ")),
    td("Media", mediaLines(a.media)),
    td("Settings", a.decision || ""),
    td("Raw", a.error && a.error.raw ? el("span", { class: "mono" }, a.error.raw) : "")));
  body.append(rows.length ? el("div", { class: "table-wrap" }, el("table", { class: "jobs" },
    el("thead", {}, el("tr", {}, ["#", "Line", "Started", "Result", "Pages sent", "Link", "Media", "Settings", "Raw"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows))) : el("p", { class: "empty" }, "No attempt yet."));
  $("details").showModal();
  $("details-close").focus();
}
$("details-close").addEventListener("click", () => $("details").close());

// mediaWords tells an attempt's media report (SIP lines) in words, a line
// per direction: for T.38 the UDPTL datagrams, the sequence gaps and how
// many the redundancy or FEC recovered, the longest burst against the
// redundancy depth, the largest datagram against the T38FaxMaxDatagram the
// receiver declared, and the page-data jitter; for G.711 the RTP packets,
// loss and jitter.
function mediaWords(m) {
  if (!m) return [];
  if (m.unavailable) return ["not measured: " + m.unavailable];
  const out = [];
  const dir = (name, d, f) => { if (d && (d.packets || d.expected)) out.push(name + ": " + f(d)); };
  if (m.t38) {
    const t = (d) => d.packets + " datagrams, " + d.gaps + " lost (" + d.recovered + " recovered from redundancy, " +
      d.unrecoverable + " beyond repair), longest burst " + d.longest_burst + " against redundancy " + d.redundancy_depth +
      ", largest " + d.largest_datagram + " octets" +
      (d.max_datagram ? (d.over_max_datagram ? " — over" : " of") + " the " + d.max_datagram + " the receiver takes" : "") +
      ", jitter " + (d.page_jitter_ms || 0).toFixed(1) + " ms" +
      (d.malformed ? ", " + d.malformed + " malformed" : "") + (d.fcs_bad ? ", " + d.fcs_bad + " bad frames" : "");
    dir("T.38 sent", m.t38.sent, t);
    dir("T.38 received", m.t38.received, t);
  }
  if (m.rtp) {
    const r = (d) => d.packets + " packets, " + d.lost + " lost (" + (d.loss_pct || 0).toFixed(2) + "%), jitter " +
      (d.jitter_ms || 0).toFixed(1) + " ms (at most " + (d.max_jitter_ms || 0).toFixed(1) + " ms)";
    dir("G.711 sent", m.rtp.sent, r);
    dir("G.711 received", m.rtp.received, r);
  }
  if (m.switch_to_udptl_ms !== undefined && m.switch_to_udptl_ms !== null) out.push("switch to T.38 took " + m.switch_to_udptl_ms + " ms");
  if (!out.length) out.push(m.transport ? m.transport + ": no packets seen" : "no packets seen");
  return out;
}
// mediaLines is mediaWords as lines of a table cell.
function mediaLines(m) { return mediaWords(m).map((w) => el("span", { class: "why" }, w)); }

let viewerURL = "";
async function viewDocument(path, title, name) {
  try {
    const r = await api("GET", path, { raw: true });
    const blob = await r.blob();
    if (viewerURL) URL.revokeObjectURL(viewerURL);
    viewerURL = URL.createObjectURL(blob);
    $("viewer").dataset.type = blob.type;
    $("viewer").dataset.size = String(blob.size);
    $("viewer-title").textContent = title;
    $("viewer-frame").src = viewerURL;
    $("viewer-download").href = viewerURL;
    $("viewer-download").setAttribute("download", name);
    $("viewer").showModal();
    $("viewer-close").focus();
  } catch (e) {
    const tab = location.hash.slice(1) || "outbox";
    showError((tab === "send" ? "outbox" : tab) + "-msg", e);
  }
}
$("viewer-close").addEventListener("click", () => $("viewer").close());
$("viewer").addEventListener("close", () => { $("viewer-frame").src = "about:blank"; });

// ---------- history ----------

async function loadHistory(more) {
  const f = $("history-form");
  const q = new URLSearchParams();
  if (f.status.value) q.set("status", f.status.value);
  if (f.since.value) q.set("since", new Date(f.since.value + "T00:00").toISOString());
  if (f.client_ref.value.trim()) q.set("client_ref", f.client_ref.value.trim());
  q.set("limit", "100");
  if (more && state.history.cursor) q.set("cursor", state.history.cursor);
  setMsg("history-msg", "");
  clearInvalid(f);
  try {
    const search = f.q.value.trim();
    if (/^fx_[0-9a-z]{26}$/i.test(search) && !more) {
      // An id: ask for that fax directly.
      const j = await api("GET", "/v1/faxes/" + encodeURIComponent(search));
      state.history = { items: [j], cursor: "", loaded: true };
    } else {
      const l = await api("GET", "/v1/faxes?" + q.toString());
      state.history = { items: (more ? state.history.items : []).concat(l.items), cursor: l.next_cursor || "", loaded: true };
      for (const j of l.items) if (!state.jobs.has(j.id) || !TERMINAL.has(j.status)) state.jobs.set(j.id, j);
    }
    renderHistory();
  } catch (e) {
    const map = { status: "h-status", since: "h-since", client_ref: "h-ref" };
    if (e.field && map[e.field]) { $(map[e.field]).setAttribute("aria-invalid", "true"); $(map[e.field]).focus(); }
    showError("history-msg", e);
  }
}

function matches(j, s) {
  if (!s) return true;
  s = s.toLowerCase();
  const hay = [j.id, j.to, j.client_ref, j.status, STATUS_WORDS[j.status], j.error && j.error.code, j.error && errorWords(j.error),
    ...(j.files || []).map((f) => f.name)].filter(Boolean).join(" ").toLowerCase();
  return hay.includes(s);
}

function renderHistory() { keepFocus($("history"), drawHistory); }
function drawHistory() {
  const body = $("history");
  const s = $("h-search").value.trim();
  body.textContent = "";
  // A job that changed since it was listed is shown as it is now.
  const items = state.history.items.map((j) => state.jobs.get(j.id) || j).filter((j) => matches(j, s));
  for (const j of items) {
    body.append(el("tr", { dataset: { id: j.id, status: j.status } },
      td("Created", when(j.created_at)),
      td("To", el("strong", {}, j.to), el("span", { class: "sub mono" }, j.id)),
      td("Status", el("span", { class: "st " + j.status }, statusWords(j))),
      td("Pages", j.pages ? j.pages_confirmed + " of " + j.pages : ""),
      td("Attempts", String((j.attempts || []).length)),
      td("Result", detailsText(j)),
      jobActions(j)));
  }
  $("history-empty").hidden = items.length > 0 || !state.history.loaded;
  $("h-more").hidden = !state.history.cursor;
}

$("history-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadHistory(false); });
$("h-search").addEventListener("input", renderHistory);
$("h-more").addEventListener("click", () => loadHistory(true));

// ---------- inbox ----------

const INBOX_WORDS = { received: "Received", partial: "Partly received", failed: "Reception failed" };

async function loadInbox() {
  const body = $("inbox");
  setMsg("inbox-msg", "");
  try {
    const l = await api("GET", "/v1/inbox?limit=100");
    const items = l.items || [];
    scheduleUnread();
    delete $("inbox-state").dataset.state;
    $("inbox-state").textContent = items.length ? "" : "No faxes received yet.";
    keepFocus(body, () => {
      body.textContent = "";
      for (const f of items) body.append(inboxRow(f));
    });
  } catch (e) {
    body.textContent = "";
    if (e.status === 404 || e.status === 405) {
      $("inbox-state").textContent = "Receiving is not available on this box: it has no inbox for received faxes.";
      $("inbox-state").dataset.state = "unavailable";
      return;
    }
    showError("inbox-msg", e);
  }
}

function inboxRow(f) {
  const from = f.caller_id || "number withheld";
  const label = "the fax from " + from + " received " + when(f.started_at || f.created_at);
  const cell = el("td", { class: "actions" });
  if (f.pdf || f.tiff) {
    cell.append(button("View", async () => {
      await viewDocument("/v1/inbox/" + encodeURIComponent(f.id) + "/document?format=" + (f.pdf ? "pdf" : "tiff"),
        "Fax from " + from, f.id + (f.pdf ? ".pdf" : ".tif"));
      if (!f.read) markInbox(f, true, true);
    }, "", "View " + label));
  }
  cell.append(button(f.read ? "Mark unread" : "Mark read", () => markInbox(f, !f.read), "secondary", (f.read ? "Mark unread " : "Mark read ") + label));
  cell.append(button("Delete", () => deleteInbox(f, label), "danger", "Delete " + label));
  const status = [el("span", { class: "st " + (f.status === "received" ? "delivered" : "failed") }, INBOX_WORDS[f.status] || f.status)];
  if (!f.read) status.push(el("span", { class: "sub" }, "new"));
  if (f.error) status.push(el("span", { class: "why" }, errorWords(f.error)));
  if (f.purged) status.push(el("span", { class: "sub" }, "pages deleted after the retention period"));
  return el("tr", { dataset: { id: f.id, status: f.status }, class: f.read ? "" : "unread" },
    td("Received", when(f.started_at || f.created_at)),
    td("From", from, f.remote_station_id ? el("span", { class: "sub" }, f.remote_station_id) : null),
    td("To", f.did || (f.port ? "port " + f.port : "")),
    td("Pages", f.pages ? String(f.pages) : "", f.transport ? el("span", { class: "sub" }, f.transport === "t38" ? "T.38" : f.transport.toUpperCase()) : null),
    td("Status", status),
    cell);
}

// setUnread shows the unread count on the Inbox tab (words: for screen
// readers and the tooltip).
function setUnread(text, words) {
  $("inbox-count").textContent = text;
  const a = $("inbox-tab");
  if (words) { a.setAttribute("aria-label", "Inbox, " + words); a.title = words; } else { a.removeAttribute("aria-label"); a.removeAttribute("title"); }
}

// loadUnread counts the unread received faxes (GET /v1/inbox?read=false).
async function loadUnread() {
  try {
    const l = await api("GET", "/v1/inbox?read=false&limit=500");
    const n = (l.items || []).length, more = !!l.next_cursor;
    setUnread(n ? n + (more ? "+" : "") : "", n ? n + (more ? " or more" : "") + " unread" : "");
  } catch (e) {
    // No inbox on this box, or not for this user (a directory user who
    // may only place calls): no count; the tab says why when opened.
    if (e instanceof ApiError && [403, 404, 405].includes(e.status)) { setUnread("", ""); return; }
    if (e.name === "AbortError") return;
    setUnread("!", "the unread count could not be read: " + (e.words ? e.words() : String(e)));
  }
}
let unreadTimer = 0;
function scheduleUnread() {
  if (unreadTimer) return;
  unreadTimer = setTimeout(() => { unreadTimer = 0; if (state.token) loadUnread(); }, 300);
}

async function markInbox(f, read, quiet) {
  try {
    await api(read ? "POST" : "DELETE", "/v1/inbox/" + encodeURIComponent(f.id) + "/read");
    if (!quiet) setMsg("inbox-msg", read ? "Marked as read." : "Marked as unread.", "ok");
    loadInbox();
  } catch (e) { showError("inbox-msg", e); }
}

async function deleteInbox(f, label) {
  if (!window.confirm("Delete " + label + "? Its pages are deleted from the box.")) return;
  try {
    await api("DELETE", "/v1/inbox/" + encodeURIComponent(f.id));
    setMsg("inbox-msg", "Deleted " + label + ".", "ok");
    loadInbox();
  } catch (e) { showError("inbox-msg", e); }
}

// ---------- calls ----------

async function loadCalls() {
  try {
    const l = await api("GET", "/v1/calls?limit=50");
    for (const j of l.items) state.calls.set(j.id, j);
    renderCalls();
  } catch (e) { showError("calls-msg", e); }
}

function callResult(j) {
  const a = lastAttempt(j);
  const parts = [];
  if (j.error) parts.push(el("span", { class: "why" }, errorWords(j.error)));
  else if (a && a.error && !TERMINAL.has(j.status)) parts.push(el("span", { class: "why" }, "Last try: " + errorWords(a.error)));
  if (a && a.digit) parts.push(el("span", { class: "sub" }, "key pressed: " + a.digit));
  if (a && a.talk_seconds) parts.push(el("span", { class: "sub" }, "talked " + a.talk_seconds + " s"));
  if (a && a.number && a.number !== j.to) parts.push(el("span", { class: "sub" }, "answered at " + a.number));
  if (j.status === "delivered") parts.unshift(el("span", { class: "ok" }, j.call && j.call.confirm_digit ? "Acknowledged." : "Completed."));
  return parts;
}

function renderCalls() { keepFocus($("calls"), drawCalls); }
function drawCalls() {
  const body = $("calls");
  body.textContent = "";
  const list = [...state.calls.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1)).slice(0, 50);
  for (const j of list) {
    const kind = j.call ? j.call.kind : "";
    body.append(el("tr", { dataset: { id: j.id, status: j.status } },
      td("Created", when(j.created_at)),
      td("Kind", { click2call: "click to call", message: "alert call", callback: "callback" }[kind] || kind,
        kind === "click2call" && j.call.agent ? el("span", { class: "sub" }, "from " + j.call.agent) : null),
      td("To", el("strong", {}, j.to), el("span", { class: "sub mono" }, j.id)),
      td("Status", el("span", { class: "st " + j.status }, CALL_STATUS_WORDS[j.status] || j.status)),
      td("Attempts", (j.attempts || []).length + " of " + j.max_attempts),
      td("Result", callResult(j)),
      el("td", { class: "actions" }, TERMINAL.has(j.status) ? null : button("Cancel", () => cancelCall(j), "danger", "Cancel the call to " + j.to),
        button("Details", () => showDetails(j.id), "secondary", "Details of the call to " + j.to))));
  }
  if (!list.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No calls yet.")));
}

async function cancelCall(j) {
  try {
    const r = await api("DELETE", "/v1/calls/" + j.id);
    state.calls.set(r.id, r); renderCalls();
    setMsg("calls-msg", "The call to " + j.to + " is cancelled.", "ok");
  } catch (e) { showError("calls-msg", e); }
}

function numField(form, name, obj) {
  const f = form.querySelector('[name="' + name + '"]');
  if (f && f.value.trim() !== "") obj[name] = Number(f.value);
}
function strField(form, name, obj) {
  const f = form.querySelector('[name="' + name + '"]');
  if (f && f.value.trim() !== "") obj[name] = f.type === "datetime-local" ? isoLocal(f.value) : f.value.trim();
}

async function placeCall(form, req, msgId, btn) {
  clearInvalid(form);
  $(btn).disabled = true;
  setMsg(msgId, "Placing the call…");
  try {
    let j;
    const play = form.querySelector('input[type="file"]');
    if (play && play.files.length) {
      const fd = new FormData();
      for (const [k, v] of Object.entries(req)) fd.append(k, Array.isArray(v) ? v.join(",") : String(v));
      fd.append("play", play.files[0], play.files[0].name);
      j = await upload("/v1/calls", fd, () => {});
    } else {
      j = await api("POST", "/v1/calls", { json: req });
    }
    state.calls.set(j.id, j);
    renderCalls();
    setMsg(msgId, "Call " + j.id + " to " + j.to + " is queued; its result shows below.", "ok");
  } catch (e) {
    showError(msgId, e, form);
  } finally {
    $(btn).disabled = false;
  }
}

$("c2c-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target, req = { kind: "click2call" };
  clearInvalid(f);
  for (const k of ["agent", "to", "send_at", "client_ref", "callback_url"]) strField(f, k, req);
  numField(f, "max_attempts", req);
  if (!req.agent || !req.to) { setMsg("c2c-msg", "Enter your extension and the number to call.", "err"); (req.agent ? $("c2c-to") : $("c2c-agent")).focus(); return; }
  req.to = await combos.c2c.resolve();
  if (req.to) placeCall(f, req, "c2c-msg", "c2c-btn");
});

$("msg-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target, req = { kind: "message" };
  clearInvalid(f);
  for (const k of ["to", "say", "confirm_digit", "retry_interval", "send_at", "client_ref", "callback_url"]) strField(f, k, req);
  for (const k of ["repeat", "max_attempts", "priority"]) numField(f, k, req);
  const fb = $("m-fallback_to").value.trim();
  if (fb) req.fallback_to = fb.split(/[\s,;]+/).filter(Boolean);
  if (!req.to) { setMsg("msgcall-msg", "Enter the number to call.", "err"); $("m-to").focus(); return; }
  if (!req.say && !$("m-play").files.length) { setMsg("msgcall-msg", "Write a message to speak or choose a recording.", "err"); $("m-say").focus(); return; }
  req.to = await combos.msg.resolve();
  if (req.to) placeCall(f, req, "msgcall-msg", "msg-btn");
});

// ---------- live events ----------

function setLive(on, text) {
  const l = $("live");
  l.hidden = false;
  l.className = "live " + (on ? "on" : "off");
  l.textContent = text;
}

// startStream reads GET /v1/events with fetch (EventSource cannot send the
// token in a header) and reconnects after a break, reloading what it missed.
async function startStream() {
  if (state.stream) state.stream.abort();
  const ctl = new AbortController();
  state.stream = ctl;
  let delay = 1000;
  while (state.stream === ctl && state.token) {
    try {
      const r = await api("GET", "/v1/events", { raw: true, signal: ctl.signal });
      setLive(true, "live");
      delay = 1000;
      await readEvents(r.body.getReader(), ctl);
    } catch (e) {
      if (e.name === "AbortError" || state.stream !== ctl) return;
      if (e instanceof ApiError && e.status === 401) return;
    }
    if (state.stream !== ctl) return;
    setLive(false, "reconnecting…");
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 15000);
    if (state.stream === ctl) { loadOutbox(); loadStatus(); loadUnread(); }
  }
}

async function readEvents(reader, ctl) {
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done || state.stream !== ctl) return;
    buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      if (data) onEvent(type, data);
    }
  }
}

let statusTimer = 0;
function onEvent(type, data) {
  let v;
  try { v = JSON.parse(data); } catch (_) { return; }
  if (type === "job") {
    if (v.kind === "call") { state.calls.set(v.id, v); renderCalls(); }
    else { state.jobs.set(v.id, v); renderOutbox(); if (!$("tab-history").hidden) renderHistory(); }
    renderSummary();
    scheduleStatus();
  } else if (type === "line") {
    state.lines.set(v.group + "/" + v.index, v);
    renderLines(); renderOutbox(); renderSummary();
  } else if (type === "alarm" || type === "status") {
    scheduleStatus();
  } else if (type === "fax.received") {
    scheduleUnread();
    if (!$("tab-inbox").hidden) loadInbox();
  }
}
// scheduleStatus refreshes the summary and alarms at most every 2 s.
function scheduleStatus() {
  if (statusTimer) return;
  statusTimer = setTimeout(() => { statusTimer = 0; if (state.token) loadStatus(); }, 2000);
}

// ---------- start ----------

route();
if (state.token) {
  signIn(state.token).catch((e) => signOut(e.words ? e.words() : String(e)));
} else {
  signOut("");
}
