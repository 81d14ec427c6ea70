package box

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// faxWidth is the width of every fax page in pixels.
const faxWidth = 1728

// documents adapts the converter and the TIFF tools to engine.Documents.
type documents struct {
	conv *convert.Converter
	clk  clock.Clock
}

func (d documents) Convert(ctx context.Context, j *job.Job, inputs []string, out string) (int, failure.Code, error) {
	in := make([]convert.Input, len(inputs))
	for i, p := range inputs {
		typ := strings.TrimPrefix(filepath.Ext(p), ".")
		in[i] = convert.Input{Path: p, Type: convert.Type(typ)}
	}
	n, err := d.conv.Convert(ctx, in, out, convert.Options{
		Resolution: j.Options.Resolution,
		PageSize:   j.Options.PageSize,
		Header:     j.Options.Header,
		StationID:  j.Options.StationID,
		Now:        d.clk.Now().Truncate(time.Minute),
	})
	if err != nil {
		return 0, convert.Code(err), err
	}
	return n, "", nil
}

func (d documents) Validate(path string) (int, error) { return tiff.Validate(path, faxWidth) }

func (d documents) Extract(src, dst string, from int) (int, error) {
	return tiff.Extract(src, dst, from)
}

type renderer struct{}

func (renderer) ToPDF(ctx context.Context, tiffPath, pdfPath string) error {
	return convert.ToPDF(ctx, tiffPath, pdfPath)
}
