package convert

import (
	"fmt"
	"strings"
)

// doc is one input made ready for ghostscript.
type doc struct {
	path  string // absolute: the PDF or the generated PostScript
	pdf   bool   // counted and checked by ghostscript
	pages int    // known page count (PostScript), or an estimate for a PDF
}

// driverPS writes the PostScript program ghostscript runs for one job.
//
// Phase 1 counts: every PDF is opened (runpdfbegin), its pages counted and
// every page's MediaBox (times UserUnit) checked against MaxPageSide; the
// running total is checked against maxPages as soon as each document is
// counted, so a page bomb is refused before a page is drawn. Problems are
// reported as lines "<marker> TAG n" on stdout and end the run (quit).
// Phase 2 prints "<marker> TOTAL n" and runs every document in order; the
// header's EndPage procedure, installed first, numbers the pages.
//
// A job with exactly one PDF (the usual case: a PDF, maybe with a cover
// text) opens it once: counted, checked, then its pages drawn from the same
// open file (dopdfpages), the other documents run before and after it.
// Totals live in global VM, untouched by the interpreter's save/restore.
//
// The marker holds a per-job random nonce, so no document can forge it.
// Every path is written as a hex string: no byte of it is PostScript syntax.
func driverPS(docs []doc, opt Options, maxPages int, marker string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `%%!PS
%% faxbox conversion driver (generated)
globaldict /FBtotal 0 put
globaldict /FBpage 0 put
/FBmax %d def
/FBside %d def
%% int (TAG) FBfail -: report and stop
/FBfail { (%s ) print print ( ) print = flush quit } bind def
%% n doc FBadd -: add a document's pages to the total
/FBadd {
  exch globaldict /FBtotal get add dup globaldict exch /FBtotal exch put
  FBmax gt { globaldict /FBtotal get (TOO-MANY) FBfail } if pop
} bind def
%% pagedict FBcheckpage -: the page's size must be sane
/FBcheckpage {
  {
    dup /MediaBox known {
      dup /UserUnit known { dup /UserUnit get } { 1 } ifelse exch
      /MediaBox get aload pop
      3 -1 roll sub abs 3 1 roll exch sub abs
      3 -1 roll dup 3 1 roll mul 3 1 roll mul
      2 copy 0 le exch 0 le or { pop pop FBdoc (BAD-PAGE) FBfail } if
      max FBside gt { FBdoc (TOO-LARGE) FBfail } if
    } { pop } ifelse
  } stopped { FBdoc (BAD-PAGE) FBfail } if
} bind def
%% (path) doc FBopen n: open a PDF, count and check its pages; it stays open
/FBopen {
  /FBdoc exch def
  { (r) file } stopped { FBdoc (UNREADABLE) FBfail } if
  runpdfbegin
  pdfpagecount /FBn exch def
  FBn 0 le { FBdoc (NO-PAGES) FBfail } if
  globaldict /FBtotal get FBn add FBmax gt { globaldict /FBtotal get FBn add (TOO-MANY) FBfail } if
  1 1 FBn { pdfgetpage dup null eq { pop FBdoc (BAD-PAGE) FBfail } if FBcheckpage } for
  FBn FBdoc FBadd
  FBn
} bind def
%% (path) doc FBcount -: count and check a PDF
/FBcount { FBopen pop runpdfend } bind def
/FBtotalout { (%s TOTAL ) print globaldict /FBtotal get = flush } bind def
`, maxPages, MaxPageSide, marker, marker)
	b.WriteString(headerPS(opt))
	single := -1
	for i, d := range docs {
		if d.pdf {
			if single >= 0 {
				single = -1
				break
			}
			single = i
		}
	}
	if single < 0 {
		for i, d := range docs {
			if d.pdf {
				fmt.Fprintf(&b, "%s %d FBcount\n", hexString(d.path), i+1)
			} else {
				fmt.Fprintf(&b, "%d %d FBadd\n", d.pages, i+1)
			}
		}
		b.WriteString("FBtotalout\n")
		for _, d := range docs {
			fmt.Fprintf(&b, "%s run\n", hexString(d.path))
		}
		return []byte(b.String())
	}
	for i, d := range docs {
		if !d.pdf {
			fmt.Fprintf(&b, "%d %d FBadd\n", d.pages, i+1)
		}
	}
	fmt.Fprintf(&b, "%s %d FBopen\nFBtotalout\n", hexString(docs[single].path), single+1)
	for _, d := range docs[:single] {
		fmt.Fprintf(&b, "%s run\n", hexString(d.path))
	}
	// FBopen left the page count on the stack.
	b.WriteString("process_trailer_attrs 1 exch dopdfpages runpdfend\n")
	for _, d := range docs[single+1:] {
		fmt.Fprintf(&b, "%s run\n", hexString(d.path))
	}
	return []byte(b.String())
}

// headerPS is the PostScript that draws the header on every page: an
// EndPage procedure numbering pages across all documents with its own
// counter in global VM (untouched by the save/restore around each PDF) and
// FBtotal, the total phase 1 counts before anything is drawn. The header is
// drawn in 9 pt Helvetica (ISO Latin-1) on a white band 14 pt high at the
// top of the page, shrunk when it would be wider than the page.
func headerPS(opt Options) string {
	if opt.Header == "" {
		return ""
	}
	var parts []string
	lit := func(s string) {
		if s != "" {
			parts = append(parts, psString(s))
		}
	}
	date := opt.Now.Format("2006-01-02 15:04")
	h := opt.Header
	for len(h) > 0 {
		i := strings.IndexByte(h, '%')
		if i < 0 {
			lit(h)
			break
		}
		lit(h[:i])
		h = h[i:]
		switch {
		case strings.HasPrefix(h, "%station"):
			lit(opt.StationID)
			h = h[len("%station"):]
		case strings.HasPrefix(h, "%date"):
			lit(date)
			h = h[len("%date"):]
		case strings.HasPrefix(h, "%n"):
			parts = append(parts, "globaldict /FBpage get 12 string cvs")
			h = h[2:]
		case strings.HasPrefix(h, "%N"):
			parts = append(parts, "globaldict /FBtotal get 12 string cvs")
			h = h[2:]
		default:
			lit("%")
			h = h[1:]
		}
	}
	return latin1Font("Helvetica", "FBHeaderFont") + fmt.Sprintf(`<< /EndPage {
  exch pop dup 2 ne {
    globaldict /FBpage 2 copy get 1 add put
    gsave initgraphics
    currentpagedevice /PageSize get aload pop
    1 setgray 0 1 index 14 sub 3 index 14 rectfill 0 setgray
    [ %s ]
    /FBHeaderFont findfont 9 scalefont setfont
    0 1 index { stringwidth pop add } forall
    3 index 28 sub
    2 copy gt { exch div 9 mul /FBHeaderFont findfont exch scalefont setfont } { pop pop } ifelse
    exch 10 sub 14 exch moveto
    { show } forall pop
    grestore
  } if
  2 ne
} bind >> setpagedevice
`, strings.Join(parts, " "))
}
