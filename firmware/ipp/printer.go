package ipp

import (
	"net/http"
	"time"

	"github.com/OpenPrinting/goipp"
)

// Document formats the printer takes. application/octet-stream is typed by
// its content.
const (
	FormatPDF   = "application/pdf"
	FormatPWG   = "image/pwg-raster"
	FormatJPEG  = "image/jpeg"
	FormatPNG   = "image/png"
	FormatOctet = "application/octet-stream"
)

var formats = []string{FormatPDF, FormatPWG, FormatJPEG, FormatPNG, FormatOctet}

// pendingTimeout is multiple-operation-time-out: a job created by Create-Job
// that gets no last document within it is aborted.
const pendingTimeout = 300 * time.Second

// operations are the supported operations, as announced.
var operations = []goipp.Op{goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpSendDocument,
	goipp.OpCancelJob, goipp.OpGetJobAttributes, goipp.OpGetJobs, goipp.OpGetPrinterAttributes}

// mediaSizes are the page sizes faxbox sends: PWG self-describing name, the
// API's page_size, and the size in hundredths of millimetres.
var mediaSizes = []struct {
	pwg, api string
	x, y     int
}{
	{"iso_a4_210x297mm", "a4", 21000, 29700},
	{"na_letter_8.5x11in", "letter", 21590, 27940},
	{"na_legal_8.5x14in", "legal", 21590, 35560},
}

// qualities maps print-quality (draft, normal, high) to the API's
// resolution.
var qualities = map[int]string{3: "standard", 4: "fine", 5: "superfine"}

func kw(name string, vs ...string) goipp.Attribute   { return strAttr(name, goipp.TagKeyword, vs...) }
func text(name string, vs ...string) goipp.Attribute { return strAttr(name, goipp.TagText, vs...) }
func uri(name string, vs ...string) goipp.Attribute  { return strAttr(name, goipp.TagURI, vs...) }

func strAttr(name string, tag goipp.Tag, vs ...string) goipp.Attribute {
	a := goipp.Attribute{Name: name}
	for _, v := range vs {
		a.Values.Add(tag, goipp.String(v))
	}
	return a
}

func ints(name string, tag goipp.Tag, vs ...int) goipp.Attribute {
	a := goipp.Attribute{Name: name}
	for _, v := range vs {
		a.Values.Add(tag, goipp.Integer(v))
	}
	return a
}

// colAttr is an attribute with one collection value.
func colAttr(name string, c goipp.Collection) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagBeginCollection, c)
}

func boolean(name string, v bool) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagBoolean, goipp.Boolean(v))
}

func rng(name string, lo, hi int) goipp.Attribute {
	return goipp.MakeAttr(name, goipp.TagRange, goipp.Range{Lower: lo, Upper: hi})
}

func res(name string, dpis ...int) goipp.Attribute {
	a := goipp.Attribute{Name: name}
	for _, d := range dpis {
		a.Values.Add(goipp.TagResolution, goipp.Resolution{Xres: d, Yres: d, Units: goipp.UnitsDpi})
	}
	return a
}

// printerURI is the printer's URI as the client reached it.
func printerURI(r *http.Request) string {
	scheme := "ipp"
	if r.TLS != nil {
		scheme = "ipps"
	}
	return scheme + "://" + r.Host + Path
}

// mediaCol describes one page size as a media-col collection.
func mediaCol(x, y int) goipp.Collection {
	size := goipp.Collection{ints("x-dimension", goipp.TagInteger, x), ints("y-dimension", goipp.TagInteger, y)}
	c := goipp.Collection{colAttr("media-size", size)}
	for _, m := range []string{"media-bottom-margin", "media-left-margin", "media-right-margin", "media-top-margin"} {
		c = append(c, ints(m, goipp.TagInteger, 0))
	}
	return c
}

// printerAttrs are the printer's attributes for the client of r; database
// adds media-col-database.
func (s *Service) printerAttrs(r *http.Request, database bool) goipp.Attributes {
	cfg := s.o.Cfg
	auth := "none"
	if !s.allowed(r) {
		auth = "basic"
	}
	name := cfg.IPP.Name
	if name == "" {
		name = "faxbox"
	}
	quality := 4
	for q, v := range qualities {
		if v == cfg.Defaults.Resolution {
			quality = q
		}
	}
	ops := goipp.Attribute{Name: "operations-supported"}
	for _, op := range operations {
		ops.Values.Add(goipp.TagEnum, goipp.Integer(op))
	}
	state, queued := s.printerState()
	attrs := goipp.Attributes{
		kw("charset-configured", "utf-8"), kw("charset-supported", "utf-8", "us-ascii"),
		kw("compression-supported", "none"),
		ints("copies-default", goipp.TagInteger, 1), rng("copies-supported", 1, 1),
		strAttr("destination-uri-schemes-supported", goipp.TagURIScheme, "tel"),
		boolean("multiple-destination-uris-supported", false),
		strAttr("document-format-default", goipp.TagMimeType, FormatPDF),
		strAttr("document-format-supported", goipp.TagMimeType, formats...),
		strAttr("generated-natural-language-supported", goipp.TagLanguage, "en"),
		kw("ipp-features-supported", "faxout"), kw("ipp-versions-supported", "1.1", "2.0"),
		kw("job-creation-attributes-supported", "destination-uris", "media", "media-col", "print-quality", "number-of-retries", "retry-interval"),
		boolean("job-ids-supported", false),
		boolean("multiple-document-jobs-supported", true),
		ints("multiple-operation-time-out", goipp.TagInteger, int(pendingTimeout/time.Second)),
		kw("multiple-operation-time-out-action", "abort-job"),
		strAttr("natural-language-configured", goipp.TagLanguage, "en"),
		ints("number-of-retries-default", goipp.TagInteger, max(cfg.Defaults.MaxAttempts-1, 0)),
		rng("number-of-retries-supported", 0, max(cfg.Limits.MaxAttempts-1, 0)),
		ints("retry-interval-default", goipp.TagInteger, int(cfg.Defaults.RetryInterval.D()/time.Second)),
		rng("retry-interval-supported", 1, 86400),
		ops,
		kw("pdl-override-supported", "attempted"),
		kw("print-color-mode-default", "monochrome"), kw("print-color-mode-supported", "monochrome"),
		ints("print-quality-default", goipp.TagEnum, quality), ints("print-quality-supported", goipp.TagEnum, 3, 4, 5),
		text("printer-device-id", "MFG:faxbox;MDL:FaxOut;CMD:PDF,PWG;CLS:FAX;"),
		text("printer-info", name+" (fax)"), text("printer-location", cfg.IPP.Location),
		text("printer-make-and-model", "faxbox FaxOut"), strAttr("printer-name", goipp.TagName, name),
		uri("printer-more-info", "http://"+r.Host+"/"),
		boolean("printer-is-accepting-jobs", true),
		ints("printer-state", goipp.TagEnum, state), kw("printer-state-reasons", "none"),
		ints("printer-up-time", goipp.TagInteger, s.upTime()),
		uri("printer-uri-supported", printerURI(r)), kw("uri-security-supported", "none"),
		kw("uri-authentication-supported", auth),
		uri("printer-uuid", "urn:uuid:"+PrinterUUID(cfg.DataDir)),
		res("printer-resolution-default", 200), res("printer-resolution-supported", 200, 300),
		res("pwg-raster-document-resolution-supported", 200, 300),
		kw("pwg-raster-document-type-supported", "black_1", "sgray_8", "srgb_8"),
		kw("pwg-raster-document-sheet-back", "normal"),
		ints("queued-job-count", goipp.TagInteger, queued),
		kw("sides-default", "one-sided"), kw("sides-supported", "one-sided"),
		kw("which-jobs-supported", "completed", "not-completed", "all"),
	}
	return append(attrs, mediaAttrs(cfg.Defaults.PageSize, database)...)
}

// mediaAttrs describe the page sizes (media-col-database only when
// database is set); pageSize (the API's a4, letter, legal) is the default.
func mediaAttrs(pageSize string, database bool) goipp.Attributes {
	var media []string
	def := mediaSizes[0]
	sizes := goipp.Attribute{Name: "media-size-supported"}
	db := goipp.Attribute{Name: "media-col-database"}
	for _, m := range mediaSizes {
		media = append(media, m.pwg)
		if m.api == pageSize {
			def = m
		}
		sizes.Values.Add(goipp.TagBeginCollection, goipp.Collection{ints("x-dimension", goipp.TagInteger, m.x), ints("y-dimension", goipp.TagInteger, m.y)})
		db.Values.Add(goipp.TagBeginCollection, mediaCol(m.x, m.y))
	}
	attrs := goipp.Attributes{
		kw("media-default", def.pwg), kw("media-supported", media...), kw("media-ready", media...),
		colAttr("media-col-default", mediaCol(def.x, def.y)), colAttr("media-col-ready", mediaCol(def.x, def.y)),
		kw("media-col-supported", "media-size", "media-bottom-margin", "media-left-margin", "media-right-margin", "media-top-margin"),
		sizes,
		ints("media-bottom-margin-supported", goipp.TagInteger, 0), ints("media-left-margin-supported", goipp.TagInteger, 0),
		ints("media-right-margin-supported", goipp.TagInteger, 0), ints("media-top-margin-supported", goipp.TagInteger, 0),
		kw("media-source-supported", "auto"), kw("media-type-supported", "stationery"),
	}
	if database {
		attrs = append(attrs, db)
	}
	return attrs
}

// upTime is printer-up-time: seconds since the box started (at least 1).
func (s *Service) upTime() int {
	return max(int(s.o.Now().Sub(s.o.Started)/time.Second), 1)
}

// allowed reports whether r comes from ipp.allow_ips.
func (s *Service) allowed(r *http.Request) bool {
	return s.allowedAddr(r.RemoteAddr)
}

// printerState is processing (4) while jobs are queued or sending, else
// idle (3), and how many jobs are not completed.
func (s *Service) printerState() (int, int) {
	n := s.activeCount()
	if n > 0 {
		return 4, n
	}
	return 3, 0
}

func (s *Service) getPrinterAttributes(rq *request) *response {
	want := requested(rq.msg.Operation)
	attrs := s.printerAttrs(rq.http, want["media-col-database"])
	return &response{status: goipp.StatusOk, printer: filterAttrs(attrs, want, printerGroups)}
}

// printerGroups names the attribute groups a client may request by group
// name; everything the printer has is a printer-description or a
// job-template attribute.
var printerGroups = map[string]bool{"all": true, "printer-description": true, "job-template": true}

// requested reads requested-attributes (empty: all).
func requested(ops goipp.Attributes) map[string]bool {
	want := map[string]bool{}
	a, ok := find(ops, "requested-attributes")
	if !ok {
		return want
	}
	for _, v := range a.Values {
		if s, ok := v.V.(goipp.String); ok {
			want[string(s)] = true
		}
	}
	return want
}

// filterAttrs keeps the attributes want names; an empty want, or one that
// names one of groups, keeps all.
func filterAttrs(attrs goipp.Attributes, want map[string]bool, groups map[string]bool) goipp.Attributes {
	if len(want) == 0 {
		return attrs
	}
	for g := range groups {
		if want[g] {
			return attrs
		}
	}
	var out goipp.Attributes
	for _, a := range attrs {
		if want[a.Name] {
			out = append(out, a)
		}
	}
	return out
}
