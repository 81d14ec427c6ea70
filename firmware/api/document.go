package api

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// docFormat reads a document's ?format: pdf (the default) or tiff.
func docFormat(r *http.Request) (string, *Error) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "pdf"
	}
	if format != "pdf" && format != "tiff" {
		return "", errf(http.StatusBadRequest, "invalid_field", "format", "format must be pdf or tiff")
	}
	return format, nil
}

// serveDocument answers a document download named base+".tif" or
// base+".pdf" by format (pdf or tiff): the TIFF tif, else the PDF pdf or,
// when pdf is "", a PDF rendered from tif now (in tif's directory, removed
// once served).
func (s *Server) serveDocument(w http.ResponseWriter, r *http.Request, base, format, tif, pdf string) {
	ext := map[string]string{"pdf": ".pdf", "tiff": ".tif"}[format]
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", base+ext))
	if format == "tiff" {
		w.Header().Set("Content-Type", "image/tiff")
		http.ServeFile(w, r, tif)
		return
	}
	if pdf == "" {
		tmp, err := os.CreateTemp(filepath.Dir(tif), ".pdf-*")
		if err != nil {
			writeErr(w, s.internal("internal", "could not make room for the PDF", err))
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
		defer cancel()
		if err := s.Renderer.ToPDF(ctx, tif, tmp.Name()); err != nil {
			writeErr(w, s.internal("conversion_failed", "could not render the PDF", err))
			return
		}
		pdf = tmp.Name()
	}
	w.Header().Set("Content-Type", "application/pdf")
	http.ServeFile(w, r, pdf)
}
