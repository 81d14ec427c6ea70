package ipp_test

import (
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/OpenPrinting/goipp"

	"github.com/faxbox/faxbox/firmware/config"
	"github.com/faxbox/faxbox/firmware/ipp"
	"github.com/faxbox/faxbox/internal/testkit/testbox"
)

// goldenService is the service file of goldenAnnouncement.
const goldenService = `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<!-- written by faxbox while it serves the IPP FaxOut printer; removed when it stops -->
<service-group>
  <name>Front desk &amp; fax</name>
  <service>
    <type>_ipp._tcp</type>
    <subtype>_fax._sub._ipp._tcp</subtype>
    <port>8080</port>
    <txt-record>txtvers=1</txt-record>
    <txt-record>qtotal=1</txt-record>
    <txt-record>rp=ipp/faxout</txt-record>
    <txt-record>rfo=ipp/faxout</txt-record>
    <txt-record>ty=faxbox FaxOut</txt-record>
    <txt-record>product=(faxbox FaxOut)</txt-record>
    <txt-record>note=Room 2</txt-record>
    <txt-record>pdl=application/octet-stream,application/pdf,image/pwg-raster,image/jpeg,image/png</txt-record>
    <txt-record>Fax=T</txt-record>
    <txt-record>Color=F</txt-record>
    <txt-record>Duplex=F</txt-record>
    <txt-record>kind=document</txt-record>
    <txt-record>PaperMax=legal-A4</txt-record>
    <txt-record>UUID=01234567-89ab-cdef-0123-456789abcdef</txt-record>
  </service>
  <service>
    <type>_fax-ipp._tcp</type>
    <port>8080</port>
    <txt-record>txtvers=1</txt-record>
    <txt-record>qtotal=1</txt-record>
    <txt-record>rp=ipp/faxout</txt-record>
    <txt-record>rfo=ipp/faxout</txt-record>
    <txt-record>ty=faxbox FaxOut</txt-record>
    <txt-record>product=(faxbox FaxOut)</txt-record>
    <txt-record>note=Room 2</txt-record>
    <txt-record>pdl=application/octet-stream,application/pdf,image/pwg-raster,image/jpeg,image/png</txt-record>
    <txt-record>Fax=T</txt-record>
    <txt-record>Color=F</txt-record>
    <txt-record>Duplex=F</txt-record>
    <txt-record>kind=document</txt-record>
    <txt-record>PaperMax=legal-A4</txt-record>
    <txt-record>UUID=01234567-89ab-cdef-0123-456789abcdef</txt-record>
  </service>
</service-group>
`

var goldenAnnouncement = ipp.Announcement{Name: "Front desk & fax", Location: "Room 2", Port: 8080,
	UUID: "01234567-89ab-cdef-0123-456789abcdef"}

// serviceFile is an avahi.service(5) file as avahi reads it.
type serviceFile struct {
	XMLName  xml.Name `xml:"service-group"`
	Name     string   `xml:"name"`
	Services []struct {
		Type     string   `xml:"type"`
		Subtypes []string `xml:"subtype"`
		Port     int      `xml:"port"`
		TXT      []string `xml:"txt-record"`
		Any      []string `xml:",any"`
	} `xml:"service"`
	Any []string `xml:",any"`
}

// parse decodes b strictly (well-formed XML, one document element).
func parse(t *testing.T, b []byte) serviceFile {
	t.Helper()
	var f serviceFile
	d := xml.NewDecoder(strings.NewReader(string(b)))
	d.Strict = true
	if err := d.Decode(&f); err != nil {
		t.Fatalf("service file is not well-formed XML: %v\n%s", err, b)
	}
	return f
}

func TestRenderServiceFileGolden(t *testing.T) {
	b, err := goldenAnnouncement.Render()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != goldenService {
		t.Fatalf("service file:\n%s\nwant:\n%s", b, goldenService)
	}
	f := parse(t, b)
	if f.Name != "Front desk & fax" || len(f.Services) != 2 {
		t.Fatalf("parsed: %+v", f)
	}
}

// TestRenderEscapes: configuration text stays text: markup in the name or
// location adds no element or service, characters XML cannot hold are
// replaced, and the name is cut to one DNS label on a character boundary.
func TestRenderEscapes(t *testing.T) {
	evil := `x</name><service><type>_evil._tcp</type><port>1</port></service><name>"'&amp;`
	a := ipp.Announcement{Name: evil, Location: evil + "\x01\t%h", Port: 631}
	b, err := a.Render()
	if err != nil {
		t.Fatal(err)
	}
	f := parse(t, b)
	if len(f.Any) != 0 || len(f.Services) != 2 {
		t.Fatalf("markup became structure: %+v\n%s", f, b)
	}
	if f.Name != evil[:63] {
		t.Errorf("name %q, want the first 63 bytes of %q", f.Name, evil)
	}
	for _, s := range f.Services {
		if s.Port != 631 || len(s.Any) != 0 || (s.Type != "_ipp._tcp" && s.Type != "_fax-ipp._tcp") {
			t.Errorf("service %+v", s)
		}
		var note string
		for _, kv := range s.TXT {
			if strings.HasPrefix(kv, "note=") {
				note = kv
			}
		}
		if note != "note="+evil+"\uFFFD\t%h" {
			t.Errorf("TXT %q, want the location with \\x01 replaced", note)
		}
	}
	if strings.Contains(string(b), "replace-wildcards") {
		t.Error("the name allows wildcards")
	}

	long := strings.Repeat("é", 40) // 80 bytes
	b, err = ipp.Announcement{Name: long, Location: strings.Repeat("ü", 100), Port: 1}.Render()
	if err != nil {
		t.Fatal(err)
	}
	f = parse(t, b)
	if f.Name != strings.Repeat("é", 31) || !utf8.ValidString(f.Name) {
		t.Errorf("long name became %q (%d bytes)", f.Name, len(f.Name))
	}
	for _, kv := range f.Services[0].TXT {
		if len(kv) > 255 {
			t.Errorf("TXT string of %d bytes: %q", len(kv), kv)
		}
	}

	if b, _ := (ipp.Announcement{Name: "  ", Port: 1}).Render(); parse(t, b).Name != "faxbox" {
		t.Errorf("blank name: %s", b)
	}
	for _, port := range []int{0, -1, 65536} {
		if _, err := (ipp.Announcement{Name: "x", Port: port}).Render(); err == nil {
			t.Errorf("port %d rendered", port)
		}
	}
}

func TestAdvertiseWithdraw(t *testing.T) {
	dir := t.TempDir()
	ad, err := ipp.Advertise(dir, goldenAnnouncement, nil)
	if err != nil || ad == nil {
		t.Fatalf("Advertise: %v, %v", ad, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ipp.ServiceFile))
	if err != nil || string(b) != goldenService {
		t.Fatalf("service file: %v\n%s", err, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d files, want only %s", len(ents), ipp.ServiceFile)
	}
	if err := ad.Withdraw(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ipp.ServiceFile)); !os.IsNotExist(err) {
		t.Fatalf("after Withdraw: %v", err)
	}
	if err := ad.Withdraw(); err != nil {
		t.Errorf("second Withdraw: %v", err)
	}

	// No responder (no directory) or announcing off: nothing, no error.
	missing := filepath.Join(dir, "avahi", "services")
	for _, d := range []string{missing, ""} {
		ad, err := ipp.Advertise(d, goldenAnnouncement, nil)
		if ad != nil || err != nil {
			t.Errorf("Advertise(%q) = %v, %v", d, ad, err)
		}
		if err := ad.Withdraw(); err != nil {
			t.Errorf("nil Withdraw: %v", err)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("Advertise made %s: %v", missing, err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := ipp.Advertise(file, goldenAnnouncement, nil); err == nil {
		t.Error("a file as the service directory was accepted")
	}
}

func TestLANPort(t *testing.T) {
	for _, c := range []struct {
		addr string
		ok   bool
	}{{"0.0.0.0:631", true}, {"[::]:631", true}, {"192.0.2.1:631", true}, {"127.0.0.1:631", false}, {"[::1]:631", false}} {
		a, err := net.ResolveTCPAddr("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if port, ok := ipp.LANPort(a); port != 631 || ok != c.ok {
			t.Errorf("LANPort(%s) = %d, %v", c.addr, port, ok)
		}
	}
	if _, ok := ipp.LANPort(&net.TCPAddr{Port: 8080}); !ok {
		t.Error("a listener on every address (no IP) is not announced")
	}
}

// TestLoopbackBoxNotAnnounced: a box serving on loopback only writes no
// service file even with the directory present.
func TestLoopbackBoxNotAnnounced(t *testing.T) {
	dir := t.TempDir()
	env := testbox.Start(t, func(c *config.Config) { c.IPP.DNSSDDir = dir })
	// The box accepts connections only once it has set up IPP.
	resp, err := http.Get(env.C.Base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("service directory holds %v", ents)
	}
}

// TestIPPListenAnnounced: with ipp.listen on every address the box
// announces that listener's port (not the API's loopback one), and the
// printer answers there.
func TestIPPListenAnnounced(t *testing.T) {
	dir := t.TempDir()
	env := testbox.Start(t, func(c *config.Config) { c.IPP.DNSSDDir, c.IPP.Listen = dir, ":0" })
	resp, err := http.Get(env.C.Base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b, err := os.ReadFile(filepath.Join(dir, ipp.ServiceFile))
	if err != nil {
		t.Fatalf("no service file: %v", err)
	}
	f := parse(t, b)
	port := f.Services[0].Port
	if strings.HasSuffix(env.C.Base, fmt.Sprintf(":%d", port)) || f.Services[1].Port != port {
		t.Fatalf("announced port %d (API at %s)\n%s", port, env.C.Base, b)
	}
	c := &client{url: fmt.Sprintf("http://127.0.0.1:%d%s", port, ipp.Path)}
	if code, m := c.do(t, goipp.OpGetPrinterAttributes, nil, nil, nil); m == nil {
		t.Fatalf("Get-Printer-Attributes on the announced port %d: HTTP %d", port, code)
	}
}
