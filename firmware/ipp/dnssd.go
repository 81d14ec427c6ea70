package ipp

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/faxbox/faxbox/internal/atomicfile"
)

// ServiceFile is the name of the avahi-daemon static service file that
// announces the printer over DNS-SD.
const ServiceFile = "faxbox-ipp.service"

// DNS-SD limits: an instance name is one DNS label (63 bytes); a TXT
// string is at most 255 bytes, so the location (note=) is cut.
const (
	maxInstanceName = 63
	maxNote         = 127
)

// Service types of the announcement. _ipp._tcp is what print dialogs
// browse; its _fax subtype marks the fax service. _fax-ipp._tcp is the type
// CUPS registers and browses fax queues under (its dnssd backend resolves
// it to an ipp:// queue of fax type).
const (
	typeIPP    = "_ipp._tcp"
	subtypeFax = "_fax._sub._ipp._tcp"
	typeFaxIPP = "_fax-ipp._tcp"
)

// makeAndModel is the printer's printer-make-and-model, also its ty= key.
const makeAndModel = "faxbox FaxOut"

// Announcement is what the printer's DNS-SD announcement says.
type Announcement struct {
	// Name is the service instance name print dialogs show (ipp.name);
	// it is cut to 63 bytes (a whole UTF-8 character); "" is "faxbox".
	Name string
	// Location is the note= key (ipp.location), cut to 127 bytes.
	Location string
	// Port is the TCP port serving Path.
	Port int
	// UUID is the printer-uuid without "urn:uuid:" ("" leaves UUID= out).
	UUID string
}

// PrinterUUID is the printer-uuid (without "urn:uuid:") of the printer of
// the box whose data directory is dataDir: stable across restarts.
func PrinterUUID(dataDir string) string {
	sum := sha256.Sum256([]byte("faxbox-ipp-faxout\x00" + dataDir))
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// LANPort returns the port of addr, a listener's address, and whether
// clients on the network can reach it: an unspecified or non-loopback
// address. A printer served on loopback only is not worth announcing.
func LANPort(addr net.Addr) (int, bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.Port <= 0 {
		return 0, false
	}
	return ta.Port, !ta.IP.IsLoopback()
}

// cut returns s, valid UTF-8, cut to at most n bytes on a character
// boundary.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// txt returns the TXT record (Bonjour Printing / IPP Everywhere keys):
// rp and rfo (the FaxOut resource key CUPS resolves fax services by) both
// name Path, the box having no print resource. URF= is left out, as the
// printer takes no image/urf; TLS= too (plain ipp://).
func (a Announcement) txt() []string {
	pdl := strings.Join([]string{FormatOctet, FormatPDF, FormatPWG, FormatJPEG, FormatPNG}, ",")
	t := []string{
		"txtvers=1", "qtotal=1",
		"rp=" + strings.TrimPrefix(Path, "/"), "rfo=" + strings.TrimPrefix(Path, "/"),
		"ty=" + makeAndModel, "product=(" + makeAndModel + ")",
		"note=" + cut(a.Location, maxNote),
		"pdl=" + pdl,
		"Fax=T", "Color=F", "Duplex=F", "kind=document", "PaperMax=legal-A4",
	}
	if a.UUID != "" {
		t = append(t, "UUID="+a.UUID)
	}
	return t
}

// avahiService is one <service> of an avahi.service(5) file.
type avahiService struct {
	Type     string   `xml:"type"`
	Subtypes []string `xml:"subtype"`
	Port     int      `xml:"port"`
	TXT      []string `xml:"txt-record"`
}

// avahiGroup is an avahi.service(5) file.
type avahiGroup struct {
	XMLName  xml.Name       `xml:"service-group"`
	Name     string         `xml:"name"`
	Services []avahiService `xml:"service"`
}

// Render returns the avahi static service file announcing the printer:
// type _ipp._tcp with subtype _fax, and _fax-ipp._tcp, on a.Port with the
// TXT record of txt. Every value is XML-escaped (characters XML cannot hold
// become U+FFFD) and the name has no wildcards, so configuration text
// cannot add elements or services.
func (a Announcement) Render() ([]byte, error) {
	if a.Port <= 0 || a.Port > 65535 {
		return nil, fmt.Errorf("ipp: dnssd: port %d", a.Port)
	}
	name := cut(strings.TrimSpace(a.Name), maxInstanceName)
	if name == "" {
		name = "faxbox"
	}
	txt := a.txt()
	g := avahiGroup{Name: name, Services: []avahiService{
		{Type: typeIPP, Subtypes: []string{subtypeFax}, Port: a.Port, TXT: txt},
		{Type: typeFaxIPP, Port: a.Port, TXT: txt},
	}}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" standalone='no'?>\n<!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n")
	b.WriteString("<!-- written by faxbox while it serves the IPP FaxOut printer; removed when it stops -->\n")
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(g); err != nil {
		return nil, fmt.Errorf("ipp: dnssd: render %s: %w", ServiceFile, err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Advert is an announcement written to avahi's service directory.
type Advert struct {
	path string
	log  *slog.Logger
	once sync.Once
	err  error
}

// Advertise announces the printer through avahi-daemon: it writes a's
// service file atomically as dir/ServiceFile, which avahi loads by itself
// (it watches dir). When dir is "" or does not exist (no mDNS responder)
// it announces nothing and returns nil, nil.
func Advertise(dir string, a Announcement, log *slog.Logger) (*Advert, error) {
	if dir == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		log.Info("no DNS-SD announcement: no avahi service directory", "component", "ipp", "dir", dir)
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("ipp: dnssd: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("ipp: dnssd: %s (ipp.dnssd_dir) is not a directory", dir)
	}
	b, err := a.Render()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ServiceFile)
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return nil, fmt.Errorf("ipp: dnssd: announce: %w", err)
	}
	log.Info("IPP FaxOut printer announced over DNS-SD", "component", "ipp", "file", path,
		"name", cut(a.Name, maxInstanceName), "port", a.Port)
	return &Advert{path: path, log: log}, nil
}

// Withdraw removes the service file (avahi then says goodbye on the
// network). Only the first call acts; later ones return its result. A nil
// Advert has nothing to withdraw.
func (ad *Advert) Withdraw() error {
	if ad == nil {
		return nil
	}
	ad.once.Do(func() {
		if err := os.Remove(ad.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			ad.err = fmt.Errorf("ipp: dnssd: withdraw: %w", err)
			ad.log.Error("DNS-SD announcement not withdrawn", "component", "ipp", "err", ad.err)
			return
		}
		ad.log.Info("DNS-SD announcement withdrawn", "component", "ipp", "file", ad.path)
	})
	return ad.err
}
