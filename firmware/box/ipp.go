package box

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/faxbox/faxbox/firmware/ipp"
)

// serveIPP serves the IPP FaxOut printer alone on ipp.listen (":631") when
// it is set, with h, the API's handler (which serves it on the API's
// listener too). The returned function stops it.
func (b *Box) serveIPP(h http.Handler) (func(), error) {
	if b.Cfg.IPP.Listen == "" || !b.Cfg.IPP.Enabled {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", b.Cfg.IPP.Listen)
	if err != nil {
		return nil, fmt.Errorf("box: listen %s (ipp.listen): %w", b.Cfg.IPP.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+ipp.Path, h)
	mux.Handle("POST "+ipp.Path+"/{job}", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.Log.Error("box: IPP listener stopped", "component", "ipp", "err", err)
		}
	}()
	b.Log.Info("IPP FaxOut printer", "component", "ipp", "uri", "ipp://"+ln.Addr().String()+ipp.Path)
	return func() { srv.Close() }, nil
}
