package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// PreviewMaxPages is how many pages POST /v1/preview draws at most; the
// answer still counts every page.
const PreviewMaxPages = 10

// previewDPI is the resolution of the preview images: a quarter of the fax
// pages' 204 dpi across, the same down the page, so a page keeps its shape
// (432 pixels wide).
const previewDPI = 51

// previewForm is what POST /v1/preview takes: the documents and the fields
// of POST /v1/faxes that change how the pages look.
var previewForm = form{file: "file", fields: map[string]bool{
	"resolution": true, "page_size": true, "header": true, "station_id": true,
}}

// Preview is the answer of POST /v1/preview.
type Preview struct {
	Pages      int           `json:"pages"` // every page of the fax
	Resolution string        `json:"resolution"`
	PageSize   string        `json:"page_size"`
	Images     []PreviewPage `json:"images"` // the first PreviewMaxPages pages
}

// PreviewPage is one drawn page.
type PreviewPage struct {
	Page   int    `json:"page"` // 1-based
	Width  int    `json:"width"`
	Height int    `json:"height"`
	PNG    []byte `json:"png"` // base64 in JSON
}

// preview converts uploaded documents exactly as a fax job would be (the
// same converter, limits and options) and answers the first pages as small
// grey PNGs. Nothing is queued and nothing is kept: the uploads and the
// converted pages are removed before the answer.
func (s *Server) preview(w http.ResponseWriter, r *http.Request) {
	if e := s.diskCheck(); e != nil {
		writeErr(w, e)
		return
	}
	sub, e := s.readMultipart(w, r, previewForm)
	if e != nil {
		writeErr(w, e)
		return
	}
	defer s.Store.RemoveDocuments(sub.id)
	d := s.Cfg.Defaults
	opt := previewOptions{Resolution: d.Resolution, PageSize: d.PageSize, Header: s.Cfg.Header, StationID: s.Cfg.StationID}
	if e := opt.read(sub.fields); e != nil {
		writeErr(w, e)
		return
	}
	p, e := s.renderPreview(r.Context(), sub, opt)
	if e != nil {
		writeErr(w, e)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// previewOptions are the page options a preview is drawn with.
type previewOptions struct {
	Resolution, PageSize, Header, StationID string
}

// read validates the form's page options into o, as POST /v1/faxes does.
func (o *previewOptions) read(f map[string]string) *Error {
	opts := job.Options{Header: o.Header, StationID: o.StationID, Resolution: o.Resolution, PageSize: o.PageSize}
	if e := faxOptions(f, &opts); e != nil {
		return e
	}
	o.Header, o.StationID, o.Resolution, o.PageSize = opts.Header, opts.StationID, opts.Resolution, opts.PageSize
	return nil
}

// renderPreview converts sub's files into a TIFF beside them and draws its
// first pages.
func (s *Server) renderPreview(ctx context.Context, sub *submission, opt previewOptions) (*Preview, *Error) {
	dir := s.Store.DocDir(sub.id)
	in := make([]convert.Input, len(sub.files))
	for i, f := range sub.files {
		in[i] = convert.Input{Path: filepath.Join(dir, f.Path), Type: convert.Type(f.Type)}
	}
	conv := convert.New(convert.Config{
		Ghostscript: s.Cfg.Convert.Ghostscript,
		Timeout:     s.Cfg.Convert.Timeout.D(),
		MemoryMB:    s.Cfg.Convert.MemoryMB,
		MaxPages:    s.Cfg.Limits.MaxPages,
	})
	out := filepath.Join(dir, "preview.tif")
	n, err := conv.Convert(ctx, in, out, convert.Options{Resolution: opt.Resolution, PageSize: opt.PageSize,
		Header: opt.Header, StationID: opt.StationID, Now: s.Now().Truncate(time.Minute)})
	if err != nil {
		return nil, s.previewErr(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, s.internal("storage_error", "could not read the converted pages back", err)
	}
	f, err := tiff.Parse(b)
	if err != nil {
		return nil, s.internal("conversion_failed", "could not read the converted pages", err)
	}
	p := &Preview{Pages: n, Resolution: opt.Resolution, PageSize: opt.PageSize, Images: []PreviewPage{}}
	for i := 0; i < min(n, PreviewMaxPages, len(f.Pages)); i++ {
		pg, err := drawPage(f, i)
		if err != nil {
			return nil, s.internal("conversion_failed", "could not draw a converted page", err)
		}
		p.Images = append(p.Images, pg)
	}
	return p, nil
}

// previewErr answers a conversion failure: the document's fault is 422 with
// a code of its own and a fixed reason (ghostscript's text can hold server
// paths; it is logged), anything else is the box's (500).
func (s *Server) previewErr(err error) *Error {
	code := convert.Code(err)
	reasons := map[failure.Code]struct{ code, msg string }{
		failure.DocumentUnreadable:   {"unreadable_document", "a document cannot be read or drawn (damaged, encrypted or not what its type says)"},
		failure.DocumentTooManyPages: {"too_many_pages", fmt.Sprintf("the documents have more than %d pages (limits.max_pages)", s.Cfg.Limits.MaxPages)},
		failure.DocumentTooLarge:     {"document_too_large", "a page or image is larger than the box draws"},
		failure.DocumentUnsupported:  {"unsupported_document", "a document is not a PDF, TIFF, PNG, JPEG or plain text"},
		failure.DocumentTimeout:      {"conversion_timeout", "converting the documents took longer than convert.timeout"},
	}
	if rs, ok := reasons[code]; ok {
		s.Log.Info("api: preview refused", "component", "api", "code", code, "err", err)
		return errf(http.StatusUnprocessableEntity, rs.code, "file", rs.msg)
	}
	if errors.Is(err, context.Canceled) {
		return errf(http.StatusBadRequest, "invalid_request", "", "the request was cancelled")
	}
	return s.internal("conversion_failed", "could not convert the documents", err)
}

// drawPage decodes page i of f and scales it to previewDPI, each preview
// pixel the share of black in the fax pixels under it (0 black, 255 white).
func drawPage(f *tiff.File, i int) (PreviewPage, error) {
	pg := f.Pages[i]
	bits, err := f.DecodeRows(i, pg.Height)
	if err != nil {
		return PreviewPage{}, fmt.Errorf("api: preview page %d: %w", i+1, err)
	}
	xdpi, ydpi := pg.Resolution()
	if xdpi <= 0 || ydpi <= 0 {
		xdpi, ydpi = 204, 196
	}
	ow := max(int(float64(pg.Width)*previewDPI/xdpi+0.5), 1)
	oh := max(int(float64(pg.Height)*previewDPI/ydpi+0.5), 1)
	img := image.NewGray(image.Rect(0, 0, ow, oh))
	rowBytes := (pg.Width + 7) / 8
	for oy := 0; oy < oh; oy++ {
		y0, y1 := oy*pg.Height/oh, max((oy+1)*pg.Height/oh, oy*pg.Height/oh+1)
		for ox := 0; ox < ow; ox++ {
			x0, x1 := ox*pg.Width/ow, max((ox+1)*pg.Width/ow, ox*pg.Width/ow+1)
			black, all := 0, 0
			for y := y0; y < y1 && y < pg.Height; y++ {
				row := bits[y*rowBytes : (y+1)*rowBytes]
				for x := x0; x < x1 && x < pg.Width; x++ {
					all++
					if row[x>>3]&(0x80>>(x&7)) != 0 {
						black++
					}
				}
			}
			img.SetGray(ox, oy, color.Gray{Y: uint8(255 - 255*black/max(all, 1))})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return PreviewPage{}, fmt.Errorf("api: preview page %d: %w", i+1, err)
	}
	return PreviewPage{Page: i + 1, Width: ow, Height: oh, PNG: buf.Bytes()}, nil
}
