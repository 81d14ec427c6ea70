package mail

import (
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// Validate checks a message before it is queued: at least one recipient,
// each a plain address (CheckAddress), a one-line subject, attachments with
// a file name, a single-line media type and a readable file.
func (m *Message) Validate() error {
	if len(m.To) == 0 {
		return fmt.Errorf("mail: message %s has no recipient", m.Ref)
	}
	if len(m.To) > 100 {
		return fmt.Errorf("mail: message %s has %d recipients; at most 100", m.Ref, len(m.To))
	}
	for i, a := range m.To {
		got, err := CheckAddress(a)
		if err != nil {
			return err
		}
		m.To[i] = got
	}
	if hasLineBreak(m.Subject) || len(m.Subject) > 998 {
		return fmt.Errorf("mail: message %s: the subject must be one line of at most 998 bytes", m.Ref)
	}
	for _, a := range m.Attachments {
		if a.Name == "" || hasLineBreak(a.Name) || len(a.Name) > 255 {
			return fmt.Errorf("mail: message %s: attachment name %q must be one line of 1 to 255 bytes", m.Ref, a.Name)
		}
		if _, _, err := mime.ParseMediaType(a.ContentType); err != nil || hasLineBreak(a.ContentType) {
			return fmt.Errorf("mail: message %s: attachment %s: content type %q: %v", m.Ref, a.Name, a.ContentType, err)
		}
		st, err := os.Stat(a.Path)
		if err != nil {
			return fmt.Errorf("mail: message %s: attachment %s: %w", m.Ref, a.Name, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("mail: message %s: attachment %s: %s is not a file", m.Ref, a.Name, a.Path)
		}
	}
	return nil
}

// compose writes m as an RFC 5322 message with MIME parts: a plain-text part
// (UTF-8, quoted-printable) and each attachment base64-encoded, in order.
// Attachments are read from their paths; id becomes the Message-ID's left
// part, so a message submitted again carries the same Message-ID.
func compose(w io.Writer, m *Message, from, id string, date time.Time) error {
	var h gomail.Header
	h.SetDate(date)
	h.SetAddressList("From", []*gomail.Address{{Name: "faxbox", Address: from}})
	to := make([]*gomail.Address, len(m.To))
	for i, a := range m.To {
		to[i] = &gomail.Address{Address: a}
	}
	h.SetAddressList("To", to)
	h.SetSubject(m.Subject)
	h.SetMessageID(id + "@" + domainOf(from))
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("X-Faxbox-Ref", m.Ref)
	mw, err := gomail.CreateWriter(w, h)
	if err != nil {
		return fmt.Errorf("mail: compose %s: %w", id, err)
	}
	var th gomail.InlineHeader
	th.Set("Content-Type", "text/plain; charset=utf-8")
	tw, err := mw.CreateSingleInline(th)
	if err != nil {
		return fmt.Errorf("mail: compose %s: %w", id, err)
	}
	text := m.Text
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if _, err := io.WriteString(tw, strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")); err != nil {
		return fmt.Errorf("mail: compose %s: %w", id, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("mail: compose %s: %w", id, err)
	}
	for _, a := range m.Attachments {
		if err := attach(mw, a); err != nil {
			return fmt.Errorf("mail: compose %s: attachment %s: %w", id, a.Name, err)
		}
	}
	return mw.Close()
}

// attach writes one attachment part.
func attach(mw *gomail.Writer, a Attachment) error {
	var ah gomail.AttachmentHeader
	ah.Set("Content-Type", a.ContentType)
	ah.SetFilename(filepath.Base(a.Name))
	f, err := os.Open(a.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	aw, err := mw.CreateAttachment(ah)
	if err != nil {
		return err
	}
	if _, err := io.Copy(aw, f); err != nil {
		return err
	}
	return aw.Close()
}

// domainOf returns the domain of an address ("faxbox" when it has none).
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i < len(addr)-1 {
		return addr[i+1:]
	}
	return "faxbox"
}
