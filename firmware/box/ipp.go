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
// listener too), and announces it over DNS-SD (advertiseIPP). The returned
// function stops it and withdraws the announcement.
func (b *Box) serveIPP(h http.Handler) (func(), error) {
	if !b.Cfg.IPP.Enabled {
		return func() {}, nil
	}
	if b.Cfg.IPP.Listen == "" {
		b.advertiseIPP(b.ln.Addr())
		return func() { b.ippWithdraw() }, nil
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
	b.advertiseIPP(ln.Addr())
	return func() { b.ippWithdraw(); srv.Close() }, nil
}

// advertiseIPP announces the printer served on addr over DNS-SD through
// avahi's service directory (ipp.dnssd_dir) and sets b.ippWithdraw. A
// printer on a loopback address is not announced; a failure is logged, the
// printer works unannounced.
func (b *Box) advertiseIPP(addr net.Addr) {
	b.ippWithdraw = func() error { return nil }
	if b.Cfg.IPP.DNSSDDir == "" {
		return
	}
	port, ok := ipp.LANPort(addr)
	if !ok {
		b.Log.Info("no DNS-SD announcement: the printer is on loopback only", "component", "ipp", "addr", addr.String())
		return
	}
	a := ipp.Announcement{Name: b.Cfg.IPP.Name, Location: b.Cfg.IPP.Location, Port: port, UUID: ipp.PrinterUUID(b.Cfg.DataDir)}
	ad, err := ipp.Advertise(b.Cfg.IPP.DNSSDDir, a, b.Log)
	if err != nil {
		b.Log.Error("IPP FaxOut printer not announced over DNS-SD", "component", "ipp", "err", err)
		return
	}
	b.ippWithdraw = ad.Withdraw
}
