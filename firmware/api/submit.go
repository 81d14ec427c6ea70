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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/store"
)

var (
	reNumber  = regexp.MustCompile(`^\+?[0-9]{3,20}$`)
	reStation = regexp.MustCompile(`^[A-Za-z0-9 +.\-]{0,20}$`)
	reRef     = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// maxField is the size limit of one form field's value.
const maxField = 1024

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

// readMultipart streams a multipart form: fields into memory (each at most
// maxField bytes), files straight into the job's document directory. On error
// nothing is left behind.
func (s *Server) readMultipart(w http.ResponseWriter, r *http.Request, fileField string) (*submission, *Error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(ct, "multipart/") || params["boundary"] == "" {
		return nil, errf(http.StatusUnsupportedMediaType, "invalid_request", "", "the request must be multipart/form-data")
	}
	limit := s.Cfg.Limits.MaxUploadBytes
	r.Body = http.MaxBytesReader(w, r.Body, limit+1<<20)
	mr := multipart.NewReader(r.Body, params["boundary"])
	sub := &submission{fields: map[string]string{}, id: engine.NewJobID()}
	fail := func(e *Error) (*submission, *Error) {
		s.Store.RemoveDocuments(sub.id)
		return nil, e
	}
	var total int64
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return fail(errf(http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("the upload exceeds %d bytes", limit)))
			}
			return fail(errf(http.StatusBadRequest, "invalid_request", "", "broken multipart body: "+err.Error()))
		}
		name := p.FormName()
		if name == "" {
			p.Close()
			continue
		}
		if controlChar(name) || len(name) > 64 {
			return fail(errf(http.StatusBadRequest, "invalid_field", "", "a form field name has control characters or is too long"))
		}
		if name == fileField && p.FileName() != "" || name == fileField {
			if len(sub.files) >= 20 {
				return fail(errf(http.StatusBadRequest, "too_many_files", fileField, "at most 20 files per job"))
			}
			f, e := s.storeFile(sub, p, limit-total)
			p.Close()
			if e != nil {
				return fail(e)
			}
			total += f.Size
			sub.files = append(sub.files, f)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, maxField+1))
		p.Close()
		if err != nil {
			return fail(errf(http.StatusBadRequest, "invalid_request", name, "broken multipart body: "+err.Error()))
		}
		if len(b) > maxField {
			return fail(errf(http.StatusBadRequest, "field_too_long", name, fmt.Sprintf("field %s is longer than %d bytes", name, maxField)))
		}
		v := string(b)
		if !utf8.ValidString(v) || controlChar(v) {
			return fail(errf(http.StatusBadRequest, "invalid_field", name, "field "+name+" contains control characters (CR, LF, ...) or invalid UTF-8"))
		}
		if _, dup := sub.fields[name]; dup {
			return fail(errf(http.StatusBadRequest, "duplicate_field", name, "field "+name+" given twice"))
		}
		sub.fields[name] = v
	}
	if len(sub.files) == 0 {
		return fail(errf(http.StatusBadRequest, "missing_file", fileField, "at least one "+fileField+" part is required"))
	}
	return sub, nil
}

// storeFile writes one uploaded file, typed by its content.
func (s *Server) storeFile(sub *submission, p *multipart.Part, limit int64) (job.File, *Error) {
	if limit <= 0 {
		return job.File{}, errf(http.StatusRequestEntityTooLarge, "too_large", "file", fmt.Sprintf("the upload exceeds %d bytes", s.Cfg.Limits.MaxUploadBytes))
	}
	br := bufio.NewReaderSize(p, 4096)
	head, _ := br.Peek(512)
	typ := sniff(head)
	audio := p.FormName() == "play"
	if audio {
		typ = sniffAudio(head)
		if typ == "" {
			return job.File{}, errf(http.StatusUnsupportedMediaType, "unsupported_recording", "play", "the recording must be WAV or MP3 (read from the content)")
		}
	}
	if typ == "" {
		return job.File{}, errf(http.StatusUnsupportedMediaType, "unsupported_document", "file",
			"file "+strconv.Quote(clean(p.FileName()))+" is not a PDF, TIFF, PNG, JPEG or plain text document (types are read from the content)")
	}
	n := len(sub.files)
	rel := fmt.Sprintf("in-%02d.%s", n, typ)
	size, sum, err := s.Store.WriteDocument(sub.id, rel, br, limit)
	if errors.Is(err, store.ErrTooLarge) {
		return job.File{}, errf(http.StatusRequestEntityTooLarge, "too_large", "file", fmt.Sprintf("the upload exceeds %d bytes", s.Cfg.Limits.MaxUploadBytes))
	}
	if errors.Is(err, store.ErrDiskFull) {
		return job.File{}, errf(http.StatusInsufficientStorage, "disk_full", "", "the box's disk is full; nothing was accepted")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return job.File{}, errf(http.StatusRequestEntityTooLarge, "too_large", "file", fmt.Sprintf("the upload exceeds %d bytes", s.Cfg.Limits.MaxUploadBytes))
		}
		return job.File{}, errf(http.StatusBadRequest, "invalid_request", "file", "could not read the upload: "+err.Error())
	}
	if size == 0 {
		return job.File{}, errf(http.StatusBadRequest, "empty_document", "file", "file "+strconv.Quote(clean(p.FileName()))+" is empty")
	}
	if audio {
		sub.paths = append(sub.paths, rel)
		return job.File{Name: clean(p.FileName()), Type: typ, Size: size, SHA256: sum, Path: rel}, nil
	}
	if e := checkDocument(filepath.Join(s.Store.DocDir(sub.id), rel), typ); e != nil {
		e.Message = "file " + strconv.Quote(clean(p.FileName())) + ": " + e.Message
		return job.File{}, e
	}
	sub.paths = append(sub.paths, rel)
	return job.File{Name: clean(p.FileName()), Type: typ, Size: size, SHA256: sum, Path: rel}, nil
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
func checkDocument(path, typ string) *Error {
	bad := func(msg string) *Error {
		return errf(http.StatusUnprocessableEntity, "unreadable_document", "file", msg)
	}
	f, err := os.Open(path)
	if err != nil {
		return bad(err.Error())
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
			return bad(err.Error())
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

var knownFaxFields = map[string]bool{
	"to": true, "client_ref": true, "callback_url": true, "max_attempts": true, "retry_interval": true,
	"priority": true, "send_at": true, "expire_at": true, "header": true, "station_id": true, "resolution": true,
	"page_size": true, "ecm": true, "t38": true, "line_group": true,
}

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
	if !reNumber.MatchString(to) {
		return bad("to", "invalid_number", "to must be 3 to 20 digits, optionally with a leading +")
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
		if e := s.checkURL(v); e != nil {
			return nil, e
		}
		j.CallbackURL = v
	}
	if v, ok := f["max_attempts"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.Cfg.Limits.MaxAttempts {
			return bad("max_attempts", "invalid_field", fmt.Sprintf("max_attempts must be 1 to %d", s.Cfg.Limits.MaxAttempts))
		}
		j.MaxAttempts = n
	}
	if v, ok := f["retry_interval"]; ok {
		dur, err := parseDuration(v)
		if err != nil || dur < time.Second || dur > 24*time.Hour {
			return bad("retry_interval", "invalid_field", "retry_interval must be a duration from 1s to 24h (e.g. 5m, or seconds)")
		}
		j.RetryInterval = job.Duration(dur)
	}
	if v, ok := f["priority"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 9 {
			return bad("priority", "invalid_field", "priority must be 0 to 9")
		}
		j.Priority = n
	}
	if v, ok := f["send_at"]; ok && v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return bad("send_at", "invalid_field", "send_at must be an RFC 3339 time, e.g. 2026-11-22T17:00:00+01:00")
		}
		j.SendAt = &t
		if t.After(now) {
			j.ExpireAt = t.Add(d.Expire.D())
		}
	}
	if v, ok := f["expire_at"]; ok && v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil || !t.After(now) {
			return bad("expire_at", "invalid_field", "expire_at must be an RFC 3339 time in the future")
		}
		j.ExpireAt = t
	}
	if v, ok := f["header"]; ok {
		if utf8.RuneCountInString(v) > 100 {
			return bad("header", "invalid_field", "header is limited to 100 characters")
		}
		j.Options.Header = v
	}
	if v, ok := f["station_id"]; ok {
		if !reStation.MatchString(v) {
			return bad("station_id", "invalid_field", "station_id is up to 20 characters: letters, digits, space, + . -")
		}
		j.Options.StationID = v
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
		enum("resolution", &j.Options.Resolution, "standard", "fine", "superfine"),
		enum("page_size", &j.Options.PageSize, "a4", "letter", "legal"),
		enum("ecm", &j.Options.ECM, "auto", "on", "off"),
		enum("t38", &j.Options.T38, "auto", "on", "off"),
	} {
		if e != nil {
			return nil, e
		}
	}
	if v, ok := f["line_group"]; ok && v != "" {
		j.Options.LineGroup = v
	}
	if _, err := s.Engine.Route(j.To, j.Options.LineGroup); err != nil {
		field := "to"
		if j.Options.LineGroup != "" {
			field = "line_group"
		}
		return nil, errf(http.StatusUnprocessableEntity, "no_line_for_number", field, "no line can dial this number: "+err.Error())
	}
	return &faxRequest{j: j, paths: sub.paths, hash: contentHash(f, sub.files)}, nil
}

// checkURL accepts an absolute http(s) callback URL without credentials.
func (s *Server) checkURL(v string) *Error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errf(http.StatusBadRequest, "invalid_url", "callback_url", "callback_url must be an absolute http:// or https:// URL without credentials")
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

// create stores a validated job durably and hands it to the engine. It
// returns the job and whether it already existed (same client_ref and
// content).
func (s *Server) create(fr *faxRequest) (*job.Job, bool, *Error) {
	if err := s.Store.SyncDocDir(fr.j.ID); err != nil {
		s.Store.RemoveDocuments(fr.j.ID)
		return nil, false, storeErr(err)
	}
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
		return nil, false, storeErr(err)
	}
	return s.Engine.Submit(got), false, nil
}

func storeErr(err error) *Error {
	if errors.Is(err, store.ErrDiskFull) {
		return errf(http.StatusInsufficientStorage, "disk_full", "", "the box's disk is full; nothing was accepted")
	}
	return errf(http.StatusInternalServerError, "storage_error", "", "could not store the job: "+err.Error())
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
