// Package convert turns the documents of a fax job into one TIFF-F: CCITT G4,
// exactly 1728 pixels wide, at standard (204×98), fine (204×196) or
// superfine (204×391) dpi, every page as tall as the chosen paper (A4,
// Letter, Legal) at that resolution, with an optional header line on every
// page.
//
// Inputs are typed by content (Sniff). PDFs go to ghostscript as they are;
// TIFFs of any compression and width through tiff2pdf; PNG, JPEG and plain
// text become PostScript pages written here (images decoded in Go, scaled to
// fit and dithered by ghostscript; text in Courier, wrapped and paginated).
//
// All pages of a job are counted before anything is drawn, so the header
// can say "page n/N" across every file and a job over MaxPages is refused
// before rendering. Rendering is ONE ghostscript run per job: a generated
// PostScript driver counts and checks every PDF (page count, page size),
// installs an EndPage procedure that draws the header with a running page
// number, then runs each document in order (a lone PDF is opened once, for
// counting and drawing). The result is checked with firmware/tiff (every
// page's structure, G4, width, height, and the page count against the count
// made first) before it is renamed into place; Config.Decode adds decoding
// every strip, which the engine does anyway before every dial.
//
// Hostile input: ghostscript always runs with -dSAFER -dBATCH -dNOPAUSE
// -dNOINTERACT, allowed to read only the job's files, in its own process
// group (killed as a whole at the deadline), under an address-space limit
// (prlimit --as), as does tiff2pdf. Pages larger than 200 inches (the PDF
// limit) and images larger than 20000 pixels a side or 100 megapixels are
// refused, the latter before a pixel is decoded. Every failure caused by the
// document wraps one of the sentinel errors, and no failure leaves the
// output or a temporary file behind.
package convert

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/atomicfile"
)

// Type of an input document, as Sniff finds it.
type Type string

// Input types.
const (
	PDF  Type = "pdf"
	TIFF Type = "tiff"
	PNG  Type = "png"
	JPEG Type = "jpeg"
	Text Type = "text"
)

// Sentinel errors. Every error Convert returns because of the document wraps
// one of them (a missing input wraps ErrUnreadable and os.ErrNotExist);
// other errors (the caller's context.Canceled, a missing tool, a failing
// disk) wrap none.
var (
	ErrUnreadable   = errors.New("convert: document unreadable")
	ErrTooManyPages = errors.New("convert: too many pages")
	ErrTimeout      = errors.New("convert: conversion timed out")
	ErrUnsupported  = errors.New("convert: unsupported document type")
	ErrTooLarge     = errors.New("convert: document too large")
)

// Code maps a conversion error to the job's failure code: document.* for
// the sentinel errors, document.missing for a missing input, and
// internal.error (retryable) for anything that is not the document's fault:
// the caller cancelled, a tool is missing, the disk failed.
func Code(err error) failure.Code {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTooManyPages):
		return failure.DocumentTooManyPages
	case errors.Is(err, ErrTimeout):
		return failure.DocumentTimeout
	case errors.Is(err, ErrUnsupported):
		return failure.DocumentUnsupported
	case errors.Is(err, ErrTooLarge):
		return failure.DocumentTooLarge
	case errors.Is(err, os.ErrNotExist):
		return failure.DocumentMissing
	case errors.Is(err, ErrUnreadable):
		return failure.DocumentUnreadable
	}
	return failure.Internal
}

// SniffLen is how many leading bytes Sniff needs at most.
const SniffLen = 512

// Sniff types a document by its first bytes (up to SniffLen), never by its
// name: PDF (%PDF-), TIFF (II*\0 or MM\0*), PNG, JPEG, or plain text (valid
// UTF-8 without NUL or other control characters but tab, CR, LF and form
// feed; a rune cut at the end of head is allowed). Empty input is
// ErrUnreadable; anything else is ErrUnsupported.
func Sniff(head []byte) (Type, error) {
	h := head[:min(len(head), SniffLen)]
	switch {
	case len(h) == 0:
		return "", fmt.Errorf("%w: the document is empty", ErrUnreadable)
	case bytes.HasPrefix(h, []byte("%PDF-")):
		return PDF, nil
	case bytes.HasPrefix(h, []byte("II*\x00")), bytes.HasPrefix(h, []byte("MM\x00*")):
		return TIFF, nil
	case bytes.HasPrefix(h, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(h, []byte("\xff\xd8\xff")):
		return JPEG, nil
	}
	t := h
	if !utf8.Valid(t) {
		// Allow one incomplete rune at the very end: the window cut it.
		i := len(t) - 1
		for i > 0 && len(t)-i < utf8.UTFMax && !utf8.RuneStart(t[i]) {
			i--
		}
		if i >= 0 && !utf8.FullRune(t[i:]) {
			t = t[:i]
		}
	}
	if !utf8.Valid(t) {
		return "", fmt.Errorf("%w: neither PDF, TIFF, PNG, JPEG nor UTF-8 text", ErrUnsupported)
	}
	for _, c := range t {
		if !textByte(c) {
			return "", fmt.Errorf("%w: binary data (byte 0x%02x)", ErrUnsupported, c)
		}
	}
	return Text, nil
}

// textByte reports whether c may appear in a plain-text document.
func textByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

// Config of a Converter. Zero fields take the defaults in New.
type Config struct {
	Ghostscript string        // ghostscript binary; default "gs"
	Timeout     time.Duration // per Convert call; default 2 minutes
	MemoryMB    int           // address-space limit of ghostscript and tiff2pdf; default 1024
	MaxPages    int           // pages per job; default 100
	// Decode makes Convert decode every page of its result (tiff.Validate)
	// instead of checking its structure (tiff.Check). It costs about 4 ms
	// of CPU per fine page, a third of ghostscript's own time; the engine
	// decodes every TIFF before each dial anyway.
	Decode bool
}

// Converter renders fax pages. It holds no state but its configuration and
// is safe for concurrent use: the caller may run one Convert per core.
type Converter struct{ cfg Config }

// New returns a Converter with defaults filled in.
func New(c Config) *Converter {
	if c.Ghostscript == "" {
		c.Ghostscript = "gs"
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.MemoryMB <= 0 {
		c.MemoryMB = 1024
	}
	if c.MaxPages <= 0 {
		c.MaxPages = 100
	}
	return &Converter{cfg: c}
}

// Input is one document of a job. Type is what Sniff said at upload (it is
// checked against the content again; "" means sniff now).
type Input struct {
	Path string
	Type Type
}

// Options of one conversion.
type Options struct {
	Resolution string // standard|fine|superfine ("" = fine)
	PageSize   string // a4|letter|legal ("" = a4)
	// Header is the tagline drawn in small type at the top of every page,
	// with %station (StationID), %date (Now as YYYY-MM-DD HH:MM), %n (page
	// number) and %N (total pages of the job, across all inputs) replaced.
	// "" draws no header.
	Header    string
	StationID string
	Now       time.Time // for %date; zero means time.Now()
}

// Width of every fax page in pixels: T.4's 215 mm scan line at 204 dpi.
const Width = 1728

// xdpi is the horizontal resolution of every fax page.
const xdpi = 204

// Limits of what is rendered.
const (
	// MaxPageSide is the largest PDF page side in points (200 inches, the
	// PDF specification's limit); larger pages are ErrTooLarge.
	MaxPageSide = 14400
	// MaxImageSide and MaxImagePixels bound PNG, JPEG and TIFF images
	// (checked before decoding).
	MaxImageSide   = 20000
	MaxImagePixels = 100_000_000
	// maxTextBytes and maxTIFFBytes bound the inputs read into memory.
	maxTextBytes = 16 << 20
	maxTIFFBytes = 256 << 20
)

// Geometry returns the vertical resolution in dpi and the page height in
// pixels for a resolution and a page size: A4 297 mm, Letter 11 in, Legal
// 14 in, rounded to whole rows. Unknown values are ErrUnsupported.
func Geometry(resolution, pageSize string) (ydpi, rows int, err error) {
	switch resolution {
	case "standard":
		ydpi = 98
	case "fine", "":
		ydpi = 196
	case "superfine":
		ydpi = 391
	default:
		return 0, 0, fmt.Errorf("%w: resolution %q (standard, fine or superfine)", ErrUnsupported, resolution)
	}
	var inches float64
	switch pageSize {
	case "a4", "":
		inches = 297 / 25.4
	case "letter":
		inches = 11
	case "legal":
		inches = 14
	default:
		return 0, 0, fmt.Errorf("%w: page size %q (a4, letter or legal)", ErrUnsupported, pageSize)
	}
	return ydpi, int(inches*float64(ydpi) + 0.5), nil
}

// geom is a page's geometry.
type geom struct {
	ydpi, rows int
	w, h       float64 // PostScript points
}

func newGeom(ydpi, rows int) geom {
	return geom{ydpi: ydpi, rows: rows, w: float64(Width) / xdpi * 72, h: float64(rows) / float64(ydpi) * 72}
}

// Convert renders inputs, in order, into one multi-page TIFF-F at out and
// returns its page count.
//
// The output is G4, 1728 pixels wide, at 204 dpi by the resolution's
// vertical dpi, each page exactly Geometry's rows tall, every document
// scaled to fit the page. It is checked with firmware/tiff (tiff.Check:
// every page's structure, G4, width and height; tiff.Validate, decoding
// every strip, when Config.Decode is set), its page count against the count
// made before rendering, then renamed into place after fsync: out is either
// complete or untouched. On error nothing is
// left behind (neither out nor a temporary file). Errors: ErrUnreadable,
// ErrTooManyPages (more than MaxPages, found before rendering), ErrTimeout
// (Config.Timeout; ghostscript's process group is killed), ErrUnsupported,
// ErrTooLarge, or the caller's context.Canceled.
func (c *Converter) Convert(ctx context.Context, inputs []Input, out string, opt Options) (pages int, err error) {
	if len(inputs) == 0 {
		return 0, fmt.Errorf("%w: no documents", ErrUnreadable)
	}
	ydpi, rows, err := Geometry(opt.Resolution, opt.PageSize)
	if err != nil {
		return 0, err
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	g := newGeom(ydpi, rows)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if inputs, err = typed(inputs); err != nil {
		return 0, err
	}
	if n, ok := c.passThrough(inputs, out, opt, g); ok {
		return n, nil
	}
	work, err := os.MkdirTemp(filepath.Dir(out), ".convert-")
	if err != nil {
		return 0, fmt.Errorf("convert: %w", err)
	}
	defer os.RemoveAll(work)

	docs := make([]doc, len(inputs))
	known := 0
	for i, in := range inputs {
		d, err := c.prepare(ctx, work, i, in, g)
		if err != nil {
			return 0, c.ctxErr(ctx, fmt.Errorf("document %d (%s): %w", i+1, in.Type, err))
		}
		known += d.pages
		if known > c.cfg.MaxPages {
			return 0, fmt.Errorf("%w: more than %d pages (at document %d)", ErrTooManyPages, c.cfg.MaxPages, i+1)
		}
		docs[i] = d
	}
	nonce := make([]byte, 8)
	rand.Read(nonce)
	marker := "FAXBOX-" + hex.EncodeToString(nonce)
	driver := filepath.Join(work, "driver.ps")
	if err := os.WriteFile(driver, driverPS(docs, opt, c.cfg.MaxPages, marker), 0o600); err != nil {
		return 0, fmt.Errorf("convert: %w", err)
	}
	tmpOut := filepath.Join(work, "out.tif")
	res, err := c.exec(ctx, marker, c.cfg.Ghostscript, gsArgs(work, docs, ydpi, rows, tmpOut, driver)...)
	if err != nil {
		return 0, c.ctxErr(ctx, err)
	}
	total, err := c.counted(res)
	if err != nil {
		return 0, err
	}
	n, err := c.checkOutput(tmpOut, g)
	if err != nil {
		return 0, fmt.Errorf("%w: ghostscript output: %v (%s)", ErrUnreadable, err, res.diag())
	}
	if n != total {
		return 0, fmt.Errorf("%w: %d pages rendered of %d counted: ghostscript could not draw every page (%s)", ErrUnreadable, n, total, res.diag())
	}
	if err := atomicfile.Rename(tmpOut, out, 0o640); err != nil {
		return 0, err
	}
	return n, nil
}

// typed returns a copy of inputs with every type decided by content; a
// declared type that the content contradicts is refused.
func typed(inputs []Input) ([]Input, error) {
	inputs = append([]Input(nil), inputs...)
	for i := range inputs {
		t, err := sniffFile(inputs[i].Path)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if inputs[i].Type != "" && inputs[i].Type != t {
			return nil, fmt.Errorf("%w: document %d was declared %s but holds %s", ErrUnreadable, i+1, inputs[i].Type, t)
		}
		inputs[i].Type = t
	}
	return inputs, nil
}

// gsArgs is the ghostscript command line running driver: G4 TIFF at the
// fax geometry into out, reading only the work directory and the documents'.
func gsArgs(work string, docs []doc, ydpi, rows int, out, driver string) []string {
	args := []string{"-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOINTERACT",
		"-sDEVICE=tiffg4", fmt.Sprintf("-r%dx%d", xdpi, ydpi), fmt.Sprintf("-g%dx%d", Width, rows),
		"-dFIXEDMEDIA", "-dPDFFitPage", "-sOutputFile=" + out}
	dirs := map[string]bool{work: true}
	for _, d := range docs {
		dirs[filepath.Dir(d.path)] = true
	}
	for d := range dirs {
		args = append(args, "--permit-file-read="+d+string(filepath.Separator))
	}
	return append(args, driver)
}

// counted reads the driver's markers: the total pages it drew, or why it
// refused the documents.
func (c *Converter) counted(res result) (int, error) {
	total := -1
	for _, m := range res.markers {
		f := strings.Fields(m)
		if len(f) != 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "TOO-MANY":
			return 0, fmt.Errorf("%w: at least %d pages, at most %d allowed", ErrTooManyPages, n, c.cfg.MaxPages)
		case "NO-PAGES":
			return 0, fmt.Errorf("%w: document %d: no pages (not a readable PDF)", ErrUnreadable, n)
		case "BAD-PAGE":
			return 0, fmt.Errorf("%w: document %d: a page cannot be read or has no size", ErrUnreadable, n)
		case "TOO-LARGE":
			return 0, fmt.Errorf("%w: document %d: a page is larger than %d points (200 in) a side", ErrTooLarge, n, MaxPageSide)
		case "UNREADABLE":
			return 0, fmt.Errorf("%w: document %d cannot be opened", ErrUnreadable, n)
		case "TOTAL":
			total = n
		}
	}
	if total < 0 {
		return 0, fmt.Errorf("%w: ghostscript ended before rendering: %s", ErrUnreadable, res.diag())
	}
	return total, nil
}

// checkOutput checks ghostscript's TIFF with firmware/tiff: structure,
// G4, width and height of every page (Check), or every strip decoded too
// (Validate) when Config.Decode is set. It returns the page count.
func (c *Converter) checkOutput(path string, g geom) (int, error) {
	if c.cfg.Decode {
		if _, err := tiff.Validate(path, Width); err != nil {
			return 0, err
		}
	}
	pages, err := tiff.Check(path, Width)
	if err != nil {
		return 0, err
	}
	for i, p := range pages {
		if p.Height != g.rows {
			return 0, fmt.Errorf("page %d is %d rows high, want %d", i+1, p.Height, g.rows)
		}
	}
	return len(pages), nil
}

// sniffFile types a file by content; a missing file is ErrUnreadable and
// os.ErrNotExist.
func sniffFile(path string) (Type, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	defer f.Close()
	head := make([]byte, SniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return Sniff(head[:n])
}

// passThrough copies a single input that already is a valid fax TIFF of
// exactly the requested geometry when no header is to be drawn: rendering
// it again would only lose quality.
func (c *Converter) passThrough(inputs []Input, out string, opt Options, g geom) (int, bool) {
	if len(inputs) != 1 || inputs[0].Type != TIFF || opt.Header != "" {
		return 0, false
	}
	b, err := readCapped(inputs[0].Path, maxTIFFBytes)
	if err != nil {
		return 0, false
	}
	f, err := tiff.Parse(b)
	if err != nil || len(f.Pages) > c.cfg.MaxPages {
		return 0, false
	}
	for i, p := range f.Pages {
		x, y := p.Resolution()
		if p.Width != Width || p.Height != g.rows || x < 200 || x > 208 || y < float64(g.ydpi)*0.97 || y > float64(g.ydpi)*1.03 || f.Decode(i) != nil {
			return 0, false
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".convert-*.tif")
	if err != nil {
		return 0, false
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = atomicfile.Rename(tmp.Name(), out, 0o640)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, false
	}
	return len(f.Pages), true
}

// ctxErr turns an error that happened after the deadline into ErrTimeout,
// and one after the caller's cancellation into context.Canceled.
func (c *Converter) ctxErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w after %s: %v", ErrTimeout, c.cfg.Timeout, err)
	case ctx.Err() != nil:
		return fmt.Errorf("convert: %w: %v", context.Canceled, err)
	}
	return err
}

// readCapped reads a file of at most limit bytes (ErrTooLarge beyond).
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d MB", ErrTooLarge, limit>>20)
	}
	return b, nil
}
