package receiving

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/faxbox/faxbox/firmware/convert"
)

// ErrPDFPages is returned by MakePDF when the PDF does not hold the TIFF's
// pages.
var ErrPDFPages = errors.New("receiving: the PDF does not hold the fax's pages")

// MakePDF renders the received TIFF tif as pdf (tiff2pdf, see
// convert.ToPDF) and checks it: ghostscript opens the PDF and counts its
// pages, which must be pages. On error pdf is removed.
func MakePDF(ctx context.Context, tif, pdf string, pages int) error {
	if err := convert.ToPDF(ctx, tif, pdf); err != nil {
		return fmt.Errorf("receiving: PDF of %s: %w", tif, err)
	}
	n, err := PDFPages(ctx, pdf)
	if err == nil && n != pages {
		err = fmt.Errorf("%w: %d pages, the TIFF has %d", ErrPDFPages, n, pages)
	}
	if err != nil {
		os.Remove(pdf)
		return err
	}
	return nil
}

// PDFPages returns the page count of the PDF at path as ghostscript reads
// it (-dSAFER, reading only that file; the path goes in as a hex string,
// so no byte of it is PostScript syntax).
func PDFPages(ctx context.Context, path string) (int, error) {
	ps := "<" + hex.EncodeToString([]byte(path)) + "> (r) file runpdfbegin pdfpagecount = quit"
	cmd := exec.CommandContext(ctx, "gs", "-q", "-dNODISPLAY", "-dBATCH", "-dNOPAUSE", "-dSAFER",
		"--permit-file-read="+path, "-c", ps)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("receiving: count the pages of %s: %w", path, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("receiving: count the pages of %s: no answer from ghostscript", path)
	}
	n, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		return 0, fmt.Errorf("receiving: count the pages of %s: %q", path, out)
	}
	return n, nil
}
