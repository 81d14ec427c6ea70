// Package convert turns the documents of a fax job into one TIFF-F: CCITT G4,
// 1728 pixels wide, at standard (204×98), fine (204×196) or superfine
// (204×391) resolution, with a header line on every page.
//
// Inputs are typed by content (Sniff). PDFs go to ghostscript as they are;
// TIFFs of any compression through tiff2pdf; PNG, JPEG and plain text become
// PostScript pages written here. All pages of a job are counted first (so
// the header can say "page n/N" across every file), then rendered in ONE
// ghostscript run whose EndPage procedure draws the header. The result is
// validated page by page (firmware/tiff) before Convert returns.
//
// ghostscript always runs with -dSAFER, in its own process group, under an
// address-space limit and the context's deadline; a document with more than
// MaxPages pages is refused before rendering.
package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// Type of an input document.
type Type string

// Input types.
const (
	PDF  Type = "pdf"
	TIFF Type = "tiff"
	PNG  Type = "png"
	JPEG Type = "jpeg"
	Text Type = "text"
)

// Sentinel errors.
var (
	ErrUnreadable   = errors.New("convert: document unreadable")
	ErrTooManyPages = errors.New("convert: too many pages")
	ErrTimeout      = errors.New("convert: conversion timed out")
	ErrUnsupported  = errors.New("convert: unsupported document type")
	ErrTooLarge     = errors.New("convert: document too large")
)

// Code maps a conversion error to the job's failure code.
func Code(err error) failure.Code {
	switch {
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
	}
	return failure.DocumentUnreadable
}

// Sniff types a document by its first bytes.
func Sniff(h []byte) (Type, error) {
	switch {
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
	for i := 0; i < 3 && len(t) > 0 && !utf8.Valid(t); i++ {
		t = t[:len(t)-1] // a rune cut by the sniff window
	}
	if !utf8.Valid(t) {
		return "", ErrUnsupported
	}
	for _, c := range t {
		if (c < 0x20 || c == 0x7f) && c != '\n' && c != '\r' && c != '\t' && c != '\f' {
			return "", ErrUnsupported
		}
	}
	return Text, nil
}

// Config of a Converter.
type Config struct {
	Ghostscript string        // "gs"
	Timeout     time.Duration // per Convert
	MemoryMB    int           // address-space limit of ghostscript
	MaxPages    int
}

// Converter renders fax pages. It is safe for concurrent use.
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

// Input is one document, in sending order.
type Input struct {
	Path string
	Type Type
}

// Options of one conversion.
type Options struct {
	Resolution string // standard|fine|superfine
	PageSize   string // a4|letter|legal
	Header     string // %station %date %n %N; "" for none
	StationID  string
	Now        time.Time
}

// Width of every fax page in pixels.
const Width = 1728

// Geometry returns the vertical resolution and the page height in pixels.
func Geometry(resolution, pageSize string) (ydpi, rows int, err error) {
	switch resolution {
	case "standard":
		ydpi = 98
	case "fine", "":
		ydpi = 196
	case "superfine":
		ydpi = 391
	default:
		return 0, 0, fmt.Errorf("convert: resolution %q", resolution)
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
		return 0, 0, fmt.Errorf("convert: page size %q", pageSize)
	}
	return ydpi, int(inches*float64(ydpi) + 0.5), nil
}

// page geometry in PostScript points
type geom struct {
	ydpi, rows int
	w, h       float64 // points
}

// Convert renders inputs into one TIFF-F at out and returns its page count.
// On error no output and no temporary file is left.
func (c *Converter) Convert(ctx context.Context, inputs []Input, out string, opt Options) (int, error) {
	if len(inputs) == 0 {
		return 0, fmt.Errorf("%w: no documents", ErrUnreadable)
	}
	ydpi, rows, err := Geometry(opt.Resolution, opt.PageSize)
	if err != nil {
		return 0, err
	}
	g := geom{ydpi: ydpi, rows: rows, w: float64(Width) / 204 * 72, h: float64(rows) / float64(ydpi) * 72}
	if n, ok := c.passThrough(inputs, out, opt, ydpi); ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	work, err := os.MkdirTemp(filepath.Dir(out), ".convert-")
	if err != nil {
		return 0, fmt.Errorf("convert: %w", err)
	}
	defer os.RemoveAll(work)

	// One PostScript driver: count every document's pages, refuse too
	// many, install the header, then render each document in order.
	var drv strings.Builder
	drv.WriteString("%!PS\n/FaxboxTotal 0 def\n")
	dirs := map[string]bool{work: true}
	var files []string
	for i, in := range inputs {
		path, n, err := c.prepare(ctx, work, i, in, g)
		if err != nil {
			return 0, c.ctxErr(ctx, fmt.Errorf("document %d (%s): %w", i+1, in.Type, err))
		}
		abs, err := filepath.Abs(path)
		if err != nil || strings.ContainsAny(abs, "\r\n") {
			return 0, fmt.Errorf("convert: unusable path %q", path)
		}
		dirs[filepath.Dir(abs)] = true
		if n > 0 {
			fmt.Fprintf(&drv, "/FaxboxTotal FaxboxTotal %d add def\n", n)
		} else { // a PDF: ghostscript counts
			fmt.Fprintf(&drv, "%s (r) file runpdfbegin pdfpagecount dup 0 eq { (FAXBOX-NO-PAGES %d) = flush quit } if runpdfend /FaxboxTotal exch FaxboxTotal add def\n", psString(abs), i+1)
		}
		files = append(files, abs)
	}
	fmt.Fprintf(&drv, "FaxboxTotal %d gt { (FAXBOX-TOO-MANY ) print FaxboxTotal = flush quit } if\n", c.cfg.MaxPages)
	drv.Write(headerPS(opt))
	for _, f := range files {
		fmt.Fprintf(&drv, "%s run\n", psString(f))
	}
	driver := filepath.Join(work, "driver.ps")
	if err := os.WriteFile(driver, []byte(drv.String()), 0o600); err != nil {
		return 0, fmt.Errorf("convert: %w", err)
	}
	tmpOut := filepath.Join(work, "out.tif")
	args := []string{"-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOINTERACT", "-sDEVICE=tiffg4",
		fmt.Sprintf("-r204x%d", ydpi), fmt.Sprintf("-g%dx%d", Width, rows), "-dFIXEDMEDIA", "-dPDFFitPage",
		"-sOutputFile=" + tmpOut}
	for d := range dirs {
		args = append(args, "--permit-file-read="+d+"/")
	}
	args = append(args, driver)
	stdout, err := c.gs(ctx, args...)
	if err != nil {
		return 0, c.ctxErr(ctx, err)
	}
	if m := regexp.MustCompile(`FAXBOX-TOO-MANY (\d+)`).FindSubmatch(stdout); m != nil {
		return 0, fmt.Errorf("%w: %s pages, at most %d", ErrTooManyPages, m[1], c.cfg.MaxPages)
	}
	if m := regexp.MustCompile(`FAXBOX-NO-PAGES (\d+)`).FindSubmatch(stdout); m != nil {
		return 0, fmt.Errorf("%w: document %s has no pages", ErrUnreadable, m[1])
	}
	n, err := tiff.Validate(tmpOut, Width)
	if err != nil {
		return 0, fmt.Errorf("%w: ghostscript output: %v", ErrUnreadable, err)
	}
	if err := syncRename(tmpOut, out); err != nil {
		return 0, err
	}
	return n, nil
}

// passThrough copies a single input that already is a fax TIFF at the
// requested resolution when no header is to be drawn: nothing to render.
func (c *Converter) passThrough(inputs []Input, out string, opt Options, ydpi int) (int, bool) {
	if len(inputs) != 1 || inputs[0].Type != TIFF || opt.Header != "" {
		return 0, false
	}
	b, err := os.ReadFile(inputs[0].Path)
	if err != nil {
		return 0, false
	}
	f, err := tiff.Parse(b)
	if err != nil || len(f.Pages) > c.cfg.MaxPages {
		return 0, false
	}
	for i, p := range f.Pages {
		x, y := p.Resolution()
		if p.Width != Width || x < 200 || x > 208 || y < float64(ydpi)*0.97 || y > float64(ydpi)*1.03 || f.Decode(i) != nil {
			return 0, false
		}
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return 0, false
	}
	if err := syncRename(tmp, out); err != nil {
		os.Remove(tmp)
		return 0, false
	}
	return len(f.Pages), true
}

func (c *Converter) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w after %s: %v", ErrTimeout, c.cfg.Timeout, err)
	}
	return err
}

// prepare turns one input into a file ghostscript can render and returns
// its page count, or 0 for a PDF (the driver counts those).
func (c *Converter) prepare(ctx context.Context, work string, i int, in Input, g geom) (string, int, error) {
	switch in.Type {
	case PDF:
		if _, err := os.Stat(in.Path); err != nil {
			return "", 0, fmt.Errorf("%w: %v", ErrUnreadable, err)
		}
		return in.Path, 0, nil // counted by ghostscript in the driver
	case TIFF:
		if err := checkTIFF(in.Path); err != nil {
			return "", 0, err
		}
		pdf := filepath.Join(work, fmt.Sprintf("in-%02d.pdf", i))
		if err := c.run(ctx, "tiff2pdf", "-o", pdf, in.Path); err != nil {
			return "", 0, fmt.Errorf("%w: %v", ErrUnreadable, err)
		}
		return pdf, 0, nil
	case PNG, JPEG:
		ps := filepath.Join(work, fmt.Sprintf("in-%02d.ps", i))
		if err := imagePS(in.Path, ps, g); err != nil {
			return "", 0, err
		}
		return ps, 1, nil
	case Text:
		ps := filepath.Join(work, fmt.Sprintf("in-%02d.ps", i))
		n, err := textPS(in.Path, ps, g)
		return ps, n, err
	}
	return "", 0, fmt.Errorf("%w: %q", ErrUnsupported, in.Type)
}

// gs runs ghostscript under the memory limit in its own process group, so a
// timeout kills everything it started.
func (c *Converter) gs(ctx context.Context, args ...string) ([]byte, error) {
	limit := strconv.Itoa(c.cfg.MemoryMB << 20)
	full := append([]string{"--as=" + limit, "--", c.cfg.Ghostscript}, args...)
	cmd := exec.CommandContext(ctx, "prlimit", full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + lastLines(stdout.String(), 3))
		if len(msg) > 400 {
			msg = msg[:400]
		}
		return nil, fmt.Errorf("%w: ghostscript: %v: %s", ErrUnreadable, err, msg)
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

func (c *Converter) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %.300s", name, err, out)
	}
	return nil
}

func syncRename(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err == nil {
		err = os.Rename(src, dst)
	}
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ToPDF renders a fax TIFF as a PDF (for download).
func ToPDF(ctx context.Context, tiffPath, pdfPath string) error {
	cmd := exec.CommandContext(ctx, "tiff2pdf", "-o", pdfPath, tiffPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("convert: tiff2pdf: %v: %.300s", err, out)
	}
	return nil
}

// checkTIFF refuses a TIFF input that is truncated or whose G4 pages do not
// decode: tiff2pdf and ghostscript would otherwise render what they can and
// a fax with missing or garbled pages would go out as delivered.
func checkTIFF(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	f, err := tiff.Parse(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	for i, p := range f.Pages {
		if err := f.CheckStrips(i); err != nil {
			return fmt.Errorf("%w: page %d: %v", ErrUnreadable, i+1, err)
		}
		if p.Compression == 4 {
			if err := f.Decode(i); err != nil {
				return fmt.Errorf("%w: page %d: %v", ErrUnreadable, i+1, err)
			}
		}
	}
	return nil
}
