package box

import (
	"context"
	"path/filepath"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/speech"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// documents adapts the converter, the TIFF tools and speech to
// engine.Documents: a fax job's inputs become its TIFF-F, a call job's
// message becomes the WAV Asterisk plays (in the same job directory).
type documents struct {
	conv *convert.Converter
	clk  clock.Clock
}

func (d documents) Convert(ctx context.Context, j *job.Job, inputs []engine.Input, out string) (int, failure.Code, error) {
	if j.Kind == job.KindCall {
		if err := speech.Message(ctx, filepath.Dir(out), j.Call); err != nil {
			return 0, failure.DocumentUnreadable, err
		}
		return 0, "", nil
	}
	in := make([]convert.Input, len(inputs))
	for i, p := range inputs {
		in[i] = convert.Input{Path: p.Path, Type: convert.Type(p.Type)}
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

func (d documents) Validate(path string) (int, error) { return tiff.Validate(path, convert.Width) }

func (d documents) Extract(src, dst string, from int) (int, error) {
	return tiff.Extract(src, dst, from)
}

func (d documents) Join(dst string, parts ...tiff.Part) (int, error) {
	return tiff.Concat(dst, parts...)
}

// renderer adapts convert.ToPDF to api.Renderer.
type renderer struct{}

func (renderer) ToPDF(ctx context.Context, tiffPath, pdfPath string) error {
	return convert.ToPDF(ctx, tiffPath, pdfPath)
}
