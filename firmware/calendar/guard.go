package calendar

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errTooLarge: a server sent more than a sync may read.
var errTooLarge = fmt.Errorf("calendar: the server sent more than %d bytes", 2*MaxBytes)

// errTooDeep: a server sent components nested deeper than MaxDepth.
var errTooDeep = fmt.Errorf("calendar: components nested deeper than %d", MaxDepth)

// guard is the calendar client's transport: every response body it hands
// on is cut off once one sync has read 2*MaxBytes in all (budget), and
// fails as soon as its iCalendar components nest deeper than MaxDepth —
// before go-webdav or go-ical decode it (the iCalendar decoder recurses
// once per level). It reads iCalendar text as well as CalDAV's XML
// answers (by Content-Type), where a line may also start after an
// element's '>' or an escaped newline (&#10; or &#xA;), and a '<' ends the
// text of one object.
type guard struct {
	base   http.RoundTripper
	budget *int64
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	xml := strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "xml")
	resp.Body = &guardedBody{rc: resp.Body, budget: g.budget, prev: '\n', xml: xml}
	return resp, nil
}

type guardedBody struct {
	rc     io.ReadCloser
	budget *int64
	depth  int
	prev   byte    // the byte before the current token
	tok    []byte  // the first bytes of the current line, up to 6
	last   [4]byte // the 4 bytes before, to know "&#10;" and "&#xA;"
	xml    bool    // an XML answer (CalDAV's multistatus), else iCalendar
	err    error
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if *b.budget -= int64(n); *b.budget < 0 {
		b.err = errTooLarge
		return 0, b.err
	}
	for _, c := range p[:n] {
		if e := b.scan(c); e != nil {
			b.err = e
			return 0, e
		}
	}
	return n, err
}

// scan follows the nesting of BEGIN: and END: lines, one byte at a time.
func (b *guardedBody) scan(c byte) error {
	newline := b.xml && c == ';' && (strings.EqualFold(string(b.last[:]), "&#10") || strings.EqualFold(string(b.last[:]), "&#xa"))
	copy(b.last[:], b.last[1:])
	b.last[3] = c
	switch {
	case b.xml && c == '<':
		b.depth, b.tok = 0, b.tok[:0]
	case c == '\n' || (b.xml && c == '>') || newline:
		b.tok = b.tok[:0]
		b.prev = '\n'
		return nil
	case len(b.tok) < 6 && b.prev == '\n':
		b.tok = append(b.tok, c|0x20) // lower case for letters; ':' stays
		switch string(b.tok) {
		case "begin:":
			if b.depth++; b.depth > MaxDepth {
				return errTooDeep
			}
		case "end:":
			b.depth = max(b.depth-1, 0)
		}
		return nil
	}
	b.prev = 0
	return nil
}

func (b *guardedBody) Close() error { return b.rc.Close() }
