package convert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/faxbox/faxbox/firmware/tiff"
	"github.com/faxbox/faxbox/internal/atomicfile"
)

// prepare turns input i into something the driver runs: a PDF as it is (the
// driver counts it), a TIFF through tiff2pdf, an image or a text as
// generated PostScript (counted here). Generated files go to work.
func (c *Converter) prepare(ctx context.Context, work string, i int, in Input, g geom) (doc, error) {
	abs, err := filepath.Abs(in.Path)
	if err != nil {
		return doc{}, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	switch in.Type {
	case PDF:
		return doc{path: abs, pdf: true}, nil
	case TIFF:
		n, err := checkTIFF(abs, c.cfg.MaxPages)
		if err != nil {
			return doc{}, err
		}
		pdf := filepath.Join(work, fmt.Sprintf("in-%02d.pdf", i))
		if _, err := c.exec(ctx, "", "tiff2pdf", "-o", pdf, abs); err != nil {
			return doc{}, err
		}
		return doc{path: pdf, pdf: true, pages: n}, nil
	case PNG, JPEG:
		ps := filepath.Join(work, fmt.Sprintf("in-%02d.ps", i))
		if err := imagePS(abs, ps, filepath.Join(work, fmt.Sprintf("in-%02d.gray", i)), g); err != nil {
			return doc{}, err
		}
		return doc{path: ps, pages: 1}, nil
	case Text:
		ps := filepath.Join(work, fmt.Sprintf("in-%02d.ps", i))
		n, err := textPS(abs, ps, g, c.cfg.MaxPages)
		if err != nil {
			return doc{}, err
		}
		return doc{path: ps, pages: n}, nil
	}
	return doc{}, fmt.Errorf("%w: %q", ErrUnsupported, in.Type)
}

// checkTIFF refuses a TIFF input that is truncated, too large, over
// maxPages, or whose G4 pages do not decode (tiff2pdf and ghostscript would
// otherwise render what they can, and a fax with missing or garbled pages
// would go out as delivered). It returns the page count.
func checkTIFF(path string, maxPages int) (int, error) {
	b, err := readCapped(path, maxTIFFBytes)
	if err != nil {
		return 0, err
	}
	f, err := tiff.Parse(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if len(f.Pages) > maxPages {
		return 0, fmt.Errorf("%w: the TIFF has %d pages, at most %d allowed", ErrTooManyPages, len(f.Pages), maxPages)
	}
	for i, p := range f.Pages {
		if p.Width <= 0 || p.Height <= 0 {
			return 0, fmt.Errorf("%w: page %d is %dx%d pixels", ErrUnreadable, i+1, p.Width, p.Height)
		}
		if p.Width > MaxImageSide || p.Height > MaxImageSide || p.Width*p.Height > MaxImagePixels {
			return 0, fmt.Errorf("%w: TIFF page %d of %dx%d pixels (at most %d a side and %d megapixels)", ErrTooLarge, i+1, p.Width, p.Height, MaxImageSide, MaxImagePixels/1_000_000)
		}
		if err := f.CheckStrips(i); err != nil {
			return 0, fmt.Errorf("%w: page %d: %v", ErrUnreadable, i+1, err)
		}
		if p.Compression == tiff.CompressionG4 {
			if err := f.Decode(i); errors.Is(err, tiff.ErrTooLarge) {
				return 0, fmt.Errorf("%w: page %d: %v", ErrTooLarge, i+1, err)
			} else if err != nil {
				return 0, fmt.Errorf("%w: page %d: %v", ErrUnreadable, i+1, err)
			}
		}
	}
	return len(f.Pages), nil
}

// ToPDF renders a fax TIFF (any compression: received faxes may be G3) as a
// PDF for download, with tiff2pdf under the default memory limit and a
// two-minute deadline unless ctx has an earlier one. The TIFF's structure is
// checked first; pdfPath is written by rename after fsync, so it is either
// complete or untouched, and nothing else is left behind on error.
func ToPDF(ctx context.Context, tiffPath, pdfPath string) error {
	b, err := readCapped(tiffPath, maxTIFFBytes)
	if err != nil {
		return fmt.Errorf("convert: to PDF: %w", err)
	}
	f, err := tiff.Parse(b)
	if err != nil {
		return fmt.Errorf("convert: to PDF: %w: %v", ErrUnreadable, err)
	}
	for i := range f.Pages {
		if err := f.CheckStrips(i); err != nil {
			return fmt.Errorf("convert: to PDF: %w: page %d: %v", ErrUnreadable, i+1, err)
		}
	}
	c := New(Config{})
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	tmp, err := os.CreateTemp(filepath.Dir(pdfPath), ".topdf-*.pdf")
	if err != nil {
		return fmt.Errorf("convert: to PDF: %w", err)
	}
	tmp.Close()
	if _, err := c.exec(ctx, "", "tiff2pdf", "-o", tmp.Name(), tiffPath); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("convert: to PDF: %w", c.ctxErr(ctx, err))
	}
	if err := atomicfile.Rename(tmp.Name(), pdfPath, 0o640); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
