package mail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode the common charsets to UTF-8
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
)

// Document is one document of a mail to fax, in the order it is sent.
type Document struct {
	Name        string // file name, one line
	ContentType string // as the mail declared it (the content decides)
	Data        []byte
}

// parsed is a mail read for faxing.
type parsed struct {
	Subject   string
	MessageID string
	Body      string // the plain-text body (first text/plain part that is no attachment)
	HTMLOnly  bool   // the text came only as HTML
	Docs      []Document
	parts     int
}

// Limits of one mail's structure.
const (
	maxDepth    = 8  // multipart nesting
	maxParts    = 64 // MIME parts in all
	maxHeaderKB = 64 // the header block of the mail
)

// singletons are header fields a mail may carry at most once (RFC 5322
// §3.6); a second one is how injected headers show.
var singletons = []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date", "Message-Id",
	"Mime-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition"}

// Refusals of the mail's content (SMTP replies).
var (
	errMalformed = func(why string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Malformed message: " + why + "; nothing was queued"}
	}
	errInjection = func(why string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Header injection refused: " + why + "; nothing was queued"}
	}
	errMedia = func(why string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 1}, Message: why + "; nothing was queued"}
	}
)

// parseMail reads a mail (as received, CRLF line ends) into its body text
// and documents. It refuses, with the SMTP reply to give: header blocks with
// bare CR or LF, NUL, lines that are no header field, a second From,
// Subject, Content-Type (...), or decoded header values and file names that
// carry line breaks (header injection); MIME it cannot read (a bad
// Content-Type, a missing boundary or closing delimiter, bad base64, an
// unknown transfer encoding or charset, nesting deeper than maxDepth or more
// than maxParts parts: malformed); and forwarded messages (media).
func parseMail(raw []byte) (*parsed, error) {
	if err := checkHeaderBlock(raw); err != nil {
		return nil, err
	}
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		return nil, errMalformed(err.Error())
	}
	h := gomail.Header{Header: e.Header}
	p := &parsed{}
	if p.Subject, err = h.Subject(); err != nil {
		return nil, errMalformed("Subject: " + err.Error())
	}
	if hasLineBreak(p.Subject) {
		return nil, errInjection("the decoded Subject holds a line break")
	}
	for _, f := range []string{"From", "Reply-To", "To", "Cc"} {
		if v := h.Get(f); v != "" {
			if dec, derr := (&mime.WordDecoder{}).DecodeHeader(v); derr == nil && hasLineBreak(dec) {
				return nil, errInjection("the decoded " + f + " holds a line break")
			}
		}
	}
	p.MessageID, _ = h.MessageID()
	if err := p.walk(e, 0, ""); err != nil {
		return nil, err
	}
	return p, nil
}

// checkHeaderBlock checks the raw header block: size, line ends, field
// syntax and singletons.
func checkHeaderBlock(raw []byte) error {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	switch {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		end = 0 // no header at all
	case end < 0:
		end = len(raw)
	}
	hdr := raw[:end]
	if len(hdr) > maxHeaderKB<<10 {
		return errMalformed(fmt.Sprintf("the header is longer than %d KB", maxHeaderKB))
	}
	if bytes.IndexByte(hdr, 0) >= 0 {
		return errInjection("NUL in the header")
	}
	seen := map[string]int{}
	for i, line := range strings.Split(string(hdr), "\r\n") {
		if strings.ContainsAny(line, "\r\n") {
			return errInjection(fmt.Sprintf("a bare CR or LF in header line %d", i+1))
		}
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			if i == 0 {
				return errMalformed("the header starts with a continuation line")
			}
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || !fieldName(name) {
			return errMalformed(fmt.Sprintf("header line %d is not a field (name: value)", i+1))
		}
		seen[strings.ToLower(name)]++
	}
	for _, f := range singletons {
		if seen[strings.ToLower(f)] > 1 {
			return errInjection("more than one " + f + " header")
		}
	}
	return nil
}

// fieldName reports a header field name: printable ASCII but colon and
// space.
func fieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// walk reads entity e (at depth, inside a multipart of type parent) into p.
func (p *parsed) walk(e *message.Entity, depth int, parent string) error {
	p.parts++
	if depth > maxDepth || p.parts > maxParts {
		return errMalformed(fmt.Sprintf("more than %d MIME parts or nesting deeper than %d", maxParts, maxDepth))
	}
	mt, params, err := e.Header.ContentType()
	if err != nil && e.Header.Get("Content-Type") != "" {
		return errMalformed("Content-Type: " + err.Error())
	}
	if mt == "" {
		mt = "text/plain"
	}
	if mr := e.MultipartReader(); mr != nil {
		if params["boundary"] == "" {
			return errMalformed(mt + " without a boundary")
		}
		return p.walkMultipart(mr, mt, depth)
	}
	disp, dparams, derr := e.Header.ContentDisposition()
	if derr != nil && e.Header.Get("Content-Disposition") != "" {
		return errMalformed("Content-Disposition: " + derr.Error())
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if hasLineBreak(name) {
		return errInjection("a file name holds a line break")
	}
	if mt == "message/rfc822" || mt == "message/global" {
		return errMedia("A forwarded message cannot be faxed: attach its documents instead")
	}
	data, err := io.ReadAll(io.LimitReader(e.Body, 64<<20))
	if err != nil {
		return errMalformed(fmt.Sprintf("part %d (%s): %v", p.parts, mt, err))
	}
	attached := disp == "attachment" || name != ""
	switch {
	case mt == "text/plain" && !attached:
		if p.Body == "" {
			p.Body = strings.ReplaceAll(string(data), "\r\n", "\n")
		}
	case mt == "text/html" && !attached:
		if p.Body == "" {
			p.HTMLOnly = true
		}
	case parent == "multipart/alternative":
		// another rendering of the text
	default:
		if name == "" {
			name = fmt.Sprintf("attachment-%d", len(p.Docs)+1)
		}
		p.Docs = append(p.Docs, Document{Name: name, ContentType: mt, Data: data})
	}
	return nil
}

// walkMultipart reads a multipart's parts: every part of a mixed one, the
// plain-text alternative of an alternative one, the root of a related one
// (the rest are an HTML body's images).
func (p *parsed) walkMultipart(mr message.MultipartReader, mt string, depth int) error {
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errMalformed(fmt.Sprintf("%s part %d: %v", mt, i+1, err))
		}
		if mt == "multipart/related" && i > 0 {
			if _, err := io.Copy(io.Discard, part.Body); err != nil {
				return errMalformed(fmt.Sprintf("%s part %d: %v", mt, i+1, err))
			}
			continue
		}
		if err := p.walk(part, depth+1, mt); err != nil {
			return err
		}
	}
}
