package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig
	_ "image/png"  // DecodeConfig
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/rules"
	"github.com/faxbox/faxbox/firmware/store"
)

var (
	reStation = regexp.MustCompile(`^[A-Za-z0-9 +.\-]{0,20}$`)
	reRef     = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// maxField is the size limit of one form field's value.
const maxField = 1024

// maxParts bounds the parts of one multipart request (files and text fields,
// ignored ones included), so a request holds at most maxParts*maxField bytes
// of field values in memory.
const maxParts = 64

// maxPartHeader bounds what the multipart reader reads between two parts'
// contents: the boundary line and one part's headers.
const maxPartHeader = 16 << 10

// errPartHeader is returned when a part's headers exceed maxPartHeader.
var errPartHeader = errors.New("api: a multipart part's headers are too long")

// form describes the multipart fields an endpoint takes.
type form struct {
	file   string          // name of the file parts
	fields map[string]bool // text fields it knows
	// lax reads unknown text fields and drops them (the classic endpoint,
	// whose scripts may post more than it reads); otherwise an unknown
	// field is refused with 400 unknown_field.
	lax bool
}

// submission is a parsed, validated fax request.
type submission struct {
	fields map[string]string
	files  []job.File
	paths  []string
	id     string
}

// controlChar reports the first control character in s.
func controlChar(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// partBudget lets the multipart reader read at most left bytes while it looks
// for the next part; left < 0 while a part's content is read.
type partBudget struct {
	r    io.Reader
	left int64
}

func (b *partBudget) Read(p []byte) (int, error) {
	if b.left < 0 {
		return b.r.Read(p)
	}
	if b.left == 0 {
		return 0, errPartHeader
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// readMultipart streams a multipart form as f describes it: text fields into
// memory (each at most maxField bytes, at most maxParts parts), files straight
// into the job's document directory. On error nothing is left behind.
func (s *Server) readMultipart(w http.ResponseWriter, r *http.Request, f form) (*submission, *Error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(ct, "multipart/") || params["boundary"] == "" {
		return nil, errf(http.StatusUnsupportedMediaType, "invalid_request", "", "the request must be multipart/form-data")
	}
	limit := s.Cfg.Limits.MaxUploadBytes
	budget := &partBudget{r: http.MaxBytesReader(w, r.Body, limit+1<<20)}
	mr := multipart.NewReader(budget, params["boundary"])
	sub := &submission{fields: map[string]string{}, id: job.NewFaxID()}
	fail := func(e *Error) (*submission, *Error) {
		s.Store.RemoveDocuments(sub.id)
		return nil, e
	}
	var total int64
	for parts := 0; ; parts++ {
		budget.left = maxPartHeader
		p, err := mr.NextPart()
		budget.left = -1
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(s.bodyErr(err, ""))
		}
		// On an error the request is abandoned: its parts are not drained.
		if parts == maxParts {
			return fail(errf(http.StatusBadRequest, "too_many_fields", "", fmt.Sprintf("at most %d form fields and files per request", maxParts)))
		}
		var e *Error
		switch name := p.FormName(); {
		case name == "":
		case name == f.file:
			var file job.File
			if file, e = s.storeFile(sub, p, limit-total); e == nil {
				total += file.Size
				sub.files = append(sub.files, file)
			}
		default:
			e = readField(sub, p, f)
		}
		if e != nil {
			return fail(e)
		}
		p.Close()
	}
	if len(sub.files) == 0 {
		return fail(errf(http.StatusBadRequest, "missing_file", f.file, "at least one "+f.file+" part is required"))
	}
	return sub, nil
}

// readField reads one text field into sub.fields: a known field once, an
// unknown one refused (or, lax, dropped).
func readField(sub *submission, p *multipart.Part, f form) *Error {
	name := p.FormName()
	if controlChar(name) || len(name) > 64 {
		return errf(http.StatusBadRequest, "invalid_field", "", "a form field name has control characters or is too long")
	}
	b, err := io.ReadAll(io.LimitReader(p, maxField+1))
	if err != nil {
		return errf(http.StatusBadRequest, "invalid_request", name, "broken multipart body: "+err.Error())
	}
	if len(b) > maxField {
		return errf(http.StatusBadRequest, "field_too_long", name, fmt.Sprintf("field %s is longer than %d bytes", name, maxField))
	}
	if !f.fields[name] {
		if f.lax {
			return nil
		}
		return errf(http.StatusBadRequest, "unknown_field", name, "unknown field "+strconv.Quote(name)+"; the fields are "+f.file+", "+strings.Join(sortedKeys(f.fields), ", "))
	}
	v := string(b)
	if !utf8.ValidString(v) || controlChar(v) {
		return errf(http.StatusBadRequest, "invalid_field", name, "field "+name+" contains control characters (CR, LF, ...) or invalid UTF-8")
	}
	if _, dup := sub.fields[name]; dup {
		return errf(http.StatusBadRequest, "duplicate_field", name, "field "+name+" given twice")
	}
	sub.fields[name] = v
	return nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// storeFile writes one uploaded file, typed by its content. A file whose name
// or Content-Type names a supported document type other than its content's
// is refused (415 document_type_mismatch).
func (s *Server) storeFile(sub *submission, p *multipart.Part, limit int64) (job.File, *Error) {
	if len(sub.files) >= 20 {
		return job.File{}, errf(http.StatusBadRequest, "too_many_files", p.FormName(), "at most 20 files per job")
	}
	if limit <= 0 {
		return job.File{}, s.bodyErr(&http.MaxBytesError{Limit: s.Cfg.Limits.MaxUploadBytes}, "file")
	}
	name := clean(p.FileName())
	br := bufio.NewReaderSize(p, 4096)
	head, _ := br.Peek(512)
	typ, e := fileType(p, head)
	if e != nil {
		return job.File{}, e
	}
	rel := fmt.Sprintf("in-%02d.%s", len(sub.files), typ)
	src := &readErr{r: br}
	size, sum, err := s.Store.WriteDocument(sub.id, rel, src, limit)
	switch {
	case errors.Is(err, store.ErrTooLarge):
		return job.File{}, s.bodyErr(&http.MaxBytesError{Limit: s.Cfg.Limits.MaxUploadBytes}, "file")
	case src.err != nil:
		return job.File{}, s.bodyErr(src.err, "file")
	case err != nil:
		return job.File{}, s.storeErr(err)
	case size == 0:
		return job.File{}, errf(http.StatusBadRequest, "empty_document", "file", "file "+strconv.Quote(name)+" is empty")
	}
	if p.FormName() != "play" {
		if e := s.checkDocument(filepath.Join(s.Store.DocDir(sub.id), rel), typ); e != nil {
			e.Message = "file " + strconv.Quote(name) + ": " + e.Message
			return job.File{}, e
		}
	}
	sub.paths = append(sub.paths, rel)
	return job.File{Name: name, Type: typ, Size: size, SHA256: sum, Path: rel}, nil
}

// fileType types an upload by its first bytes: a recording (the "play"
// part) as wav or mp3, a document as convert.Sniff does. A document whose
// file name extension or Content-Type names another supported type is
// refused; generic declarations (application/octet-stream, .bin) are not.
func fileType(p *multipart.Part, head []byte) (string, *Error) {
	name := clean(p.FileName())
	if p.FormName() == "play" {
		if t := sniffAudio(head); t != "" {
			return t, nil
		}
		return "", errf(http.StatusUnsupportedMediaType, "unsupported_recording", "play", "the recording must be WAV or MP3 (read from the content)")
	}
	typ := sniff(head)
	if typ == "" {
		return "", errf(http.StatusUnsupportedMediaType, "unsupported_document", "file",
			"file "+strconv.Quote(name)+" is not a PDF, TIFF, PNG, JPEG or plain text document (types are read from the content)")
	}
	mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
	for _, decl := range []string{strings.ToLower(filepath.Ext(name)), strings.ToLower(mt)} {
		if d := declaredTypes[decl]; d != "" && d != typ {
			return "", errf(http.StatusUnsupportedMediaType, "document_type_mismatch", "file",
				fmt.Sprintf("file %s is declared as %s (%s) but its content is %s; nothing was accepted", strconv.Quote(name), d, decl, typ))
		}
	}
	return typ, nil
}

// declaredTypes maps file name extensions and media types to the document
// type they name.
var declaredTypes = map[string]string{
	".pdf": "pdf", ".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".txt": "text", ".text": "text",
	"application/pdf": "pdf", "application/x-pdf": "pdf", "image/tiff": "tiff", "image/png": "png",
	"image/jpeg": "jpeg", "image/pjpeg": "jpeg", "text/plain": "text",
}

// clean makes a client's file name safe to echo.
func clean(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		if r >= 0x20 && r != 0x7f && b.Len() < 128 {
			b.WriteRune(r)
		}
	}
	if s := b.String(); s != "" && s != "." && s != "/" {
		return s
	}
	return "upload"
}

// sniff types a document by its content ("" when unsupported).
func sniff(h []byte) string {
	t, err := convert.Sniff(h)
	if err != nil {
		return ""
	}
	return string(t)
}

// sniffAudio types a recording: "wav", "mp3" or "".
func sniffAudio(h []byte) string {
	switch {
	case len(h) >= 12 && bytes.Equal(h[:4], []byte("RIFF")) && bytes.Equal(h[8:12], []byte("WAVE")):
		return "wav"
	case bytes.HasPrefix(h, []byte("ID3")), len(h) >= 2 && h[0] == 0xff && h[1]&0xe0 == 0xe0:
		return "mp3"
	}
	return ""
}

// checkDocument does the cheap checks that catch a broken file before the
// job is accepted; the converter does the rest.
func (s *Server) checkDocument(path, typ string) *Error {
	bad := func(msg string) *Error {
		return errf(http.StatusUnprocessableEntity, "unreadable_document", "file", msg)
	}
	f, err := os.Open(path)
	if err != nil {
		return s.internal("storage_error", "could not read the stored upload back", err)
	}
	defer f.Close()
	st, _ := f.Stat()
	switch typ {
	case "pdf":
		tail := make([]byte, min(st.Size(), 2048))
		f.ReadAt(tail, st.Size()-int64(len(tail)))
		if !bytes.Contains(tail, []byte("%%EOF")) {
			return bad("the PDF is truncated (no %%EOF trailer)")
		}
	case "png", "jpeg":
		c, _, err := image.DecodeConfig(f)
		if err != nil {
			return bad("the image cannot be read: " + err.Error())
		}
		if c.Width <= 0 || c.Height <= 0 || c.Width > 20000 || c.Height > 20000 || c.Width*c.Height > 100_000_000 {
			return bad(fmt.Sprintf("the image is %dx%d pixels; at most 20000x20000 and 100 megapixels", c.Width, c.Height))
		}
	case "tiff":
		if st.Size() < 16 {
			return bad("the TIFF is truncated")
		}
	case "text":
		b, err := io.ReadAll(io.LimitReader(f, 4<<20+1))
		if err != nil {
			return s.internal("storage_error", "could not read the stored upload back", err)
		}
		if len(b) > 4<<20 {
			return errf(http.StatusRequestEntityTooLarge, "too_large", "file", "plain text documents are limited to 4 MB")
		}
		if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
			return bad("the text is not valid UTF-8")
		}
	}
	return nil
}

// faxRequest holds a validated job before it is stored.
type faxRequest struct {
	j     *job.Job
	paths []string
	hash  string
}

// faxForm is what POST /v1/faxes takes.
var faxForm = form{file: "file", fields: map[string]bool{
	"to": true, "client_ref": true, "callback_url": true, "max_attempts": true, "retry_interval": true,
	"priority": true, "send_at": true, "expire_at": true, "header": true, "station_id": true, "resolution": true,
	"page_size": true, "ecm": true, "t38": true, "line_group": true, "notify_email": true,
	"notify_xmpp": true,
}}

// validate builds the job from the submission's fields.
func (s *Server) validate(sub *submission, now time.Time) (*faxRequest, *Error) {
	f := sub.fields
	d := s.Cfg.Defaults
	bad := func(field, code, msg string) (*faxRequest, *Error) {
		return nil, errf(http.StatusBadRequest, code, field, msg)
	}
	to := f["to"]
	if to == "" {
		return bad("to", "missing_field", "to is required")
	}
	if rules.Number(to) != nil {
		return bad("to", "invalid_number", "to must be 3 to 20 digits, optionally with a leading +")
	}
	if reason, no := s.Engine.Rejected(to); no {
		return nil, errf(http.StatusUnprocessableEntity, "rejected_destination", "to", "the box's destination rules refuse this number: "+reason)
	}
	j := &job.Job{
		ID: sub.id, Kind: job.KindFax, To: to, Status: job.Queued,
		CreatedAt: now, UpdatedAt: now, Files: sub.files,
		MaxAttempts: d.MaxAttempts, RetryInterval: d.RetryInterval, ExpireAt: now.Add(d.Expire.D()),
		Options: job.Options{Header: s.Cfg.Header, StationID: s.Cfg.StationID, Resolution: d.Resolution,
			PageSize: d.PageSize, ECM: d.ECM, T38: d.T38},
	}
	if v, ok := f["client_ref"]; ok {
		if !reRef.MatchString(v) {
			return bad("client_ref", "invalid_field", "client_ref must be 1 to 128 printable ASCII characters without spaces")
		}
		j.ClientRef = v
	}
	if v, ok := f["callback_url"]; ok && v != "" {
		if e := s.checkURL("callback_url", v); e != nil {
			return nil, e
		}
		j.CallbackURL = v
	}
	if e := s.notifyField(f, j); e != nil {
		return nil, e
	}
	if e := s.xmppField(f["notify_xmpp"], j); e != nil {
		return nil, e
	}
	if e := s.retryFields(f, j); e != nil {
		return nil, e
	}
	if e := whenFields(f, j, d.Expire.D(), now); e != nil {
		return nil, e
	}
	if e := faxOptions(f, &j.Options); e != nil {
		return nil, e
	}
	group, err := s.Engine.Route(j.To, j.Options.LineGroup)
	j.Group = group
	if err != nil {
		field := "to"
		if j.Options.LineGroup != "" {
			field = "line_group"
		}
		return nil, errf(http.StatusUnprocessableEntity, "no_line_for_number", field, "no line can dial this number: "+err.Error())
	}
	return &faxRequest{j: j, paths: sub.paths, hash: contentHash(f, sub.files)}, nil
}

// retryFields reads max_attempts, retry_interval and priority into j.
func (s *Server) retryFields(f map[string]string, j *job.Job) *Error {
	if v, ok := f["max_attempts"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.Cfg.Limits.MaxAttempts {
			return errf(http.StatusBadRequest, "invalid_field", "max_attempts", fmt.Sprintf("max_attempts must be 1 to %d", s.Cfg.Limits.MaxAttempts))
		}
		j.MaxAttempts = n
	}
	if v, ok := f["retry_interval"]; ok {
		dur, err := parseDuration(v)
		if err != nil || dur < time.Second || dur > 24*time.Hour {
			return errf(http.StatusBadRequest, "invalid_field", "retry_interval", "retry_interval must be a duration from 1s to 24h (e.g. 5m, or seconds)")
		}
		j.RetryInterval = job.Duration(dur)
	}
	if v, ok := f["priority"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 9 {
			return errf(http.StatusBadRequest, "invalid_field", "priority", "priority must be 0 to 9")
		}
		j.Priority = n
	}
	return nil
}

// whenFields reads send_at and expire_at into j; a job sent later expires
// expire after its send time.
func whenFields(f map[string]string, j *job.Job, expire time.Duration, now time.Time) *Error {
	if v, ok := f["send_at"]; ok && v != "" {
		t, e := parseWhen("send_at", v, now, false)
		if e != nil {
			return e
		}
		j.SendAt = &t
		if t.After(now) {
			j.ExpireAt = t.Add(expire)
		}
	}
	if v, ok := f["expire_at"]; ok && v != "" {
		t, e := parseWhen("expire_at", v, now, true)
		if e != nil {
			return e
		}
		j.ExpireAt = t
	}
	return nil
}

// faxOptions validates a fax's page and line options into o.
func faxOptions(f map[string]string, o *job.Options) *Error {
	bad := func(field, code, msg string) *Error { return errf(http.StatusBadRequest, code, field, msg) }
	if v, ok := f["header"]; ok {
		if utf8.RuneCountInString(v) > 100 {
			return bad("header", "invalid_field", "header is limited to 100 characters")
		}
		o.Header = v
	}
	if v, ok := f["station_id"]; ok {
		if !reStation.MatchString(v) {
			return bad("station_id", "invalid_field", "station_id is up to 20 characters: letters, digits, space, + . -")
		}
		o.StationID = v
	}
	enum := func(field string, dst *string, allowed ...string) *Error {
		v, ok := f[field]
		if !ok {
			return nil
		}
		for _, a := range allowed {
			if v == a {
				*dst = v
				return nil
			}
		}
		return errf(http.StatusBadRequest, "invalid_field", field, field+" must be one of "+strings.Join(allowed, ", "))
	}
	for _, e := range []*Error{
		enum("resolution", &o.Resolution, "standard", "fine", "superfine"),
		enum("page_size", &o.PageSize, "a4", "letter", "legal"),
		enum("ecm", &o.ECM, "auto", "on", "off"),
		enum("t38", &o.T38, "auto", "on", "off"),
	} {
		if e != nil {
			return e
		}
	}
	if v, ok := f["line_group"]; ok && v != "" {
		o.LineGroup = v
	}
	return nil
}

// contentHash identifies a submission's content for client_ref idempotency:
// every field and every file's bytes.
func contentHash(fields map[string]string, files []job.File) string {
	h := sha256.New()
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, fields[k])
	}
	for _, f := range files {
		fmt.Fprintf(h, "file %s %d\n", f.SHA256, f.Size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// create stores a validated job durably (its files, their directory and its
// record: store.Create returns once all are on disk) and hands it to the
// engine. It returns the job and whether it already existed (same client_ref
// and content).
func (s *Server) create(fr *faxRequest) (*job.Job, bool, *Error) {
	rec := &store.Record{Job: fr.j, Hash: fr.hash, Paths: fr.paths}
	got, err := s.Store.Create(rec)
	if errors.Is(err, store.ErrRefExists) {
		s.Store.RemoveDocuments(fr.j.ID)
		if got.Hash != fr.hash {
			return got.Job, false, errf(http.StatusConflict, "client_ref_conflict", "client_ref",
				"client_ref "+strconv.Quote(fr.j.ClientRef)+" was used for a job with other content ("+got.Job.ID+")")
		}
		j, gerr := s.Engine.Get(got.Job.ID)
		if gerr != nil {
			j = got.Job
		}
		return j, true, nil
	}
	if err != nil {
		s.Store.RemoveDocuments(fr.j.ID)
		return nil, false, s.storeErr(err)
	}
	return s.Engine.Submit(got), false, nil
}

// storeErr answers a failure to store a job: 507 on a full disk, else 500
// storage_error without the internal details (logged).
func (s *Server) storeErr(err error) *Error {
	return s.answer(err, "", "", "storage_error", "could not store the job")
}

// diskCheck refuses new work when the data disk is nearly full.
func (s *Server) diskCheck() *Error {
	free, err := s.Store.FreeBytes()
	if err == nil && s.Cfg.Limits.MinFreeBytes > 0 && free < uint64(s.Cfg.Limits.MinFreeBytes) {
		return errf(http.StatusInsufficientStorage, "disk_full",
			"", fmt.Sprintf("the box's disk has %d bytes free, below the %d it keeps in reserve; nothing was accepted", free, s.Cfg.Limits.MinFreeBytes))
	}
	return nil
}
