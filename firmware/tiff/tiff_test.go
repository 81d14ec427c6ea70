package tiff

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faxbox/faxbox/internal/testkit"
)

func write(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.tif")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateRealFaxTIFF(t *testing.T) {
	b := testkit.FaxTIFF(t, 3)
	n, err := Validate(write(t, b), 1728)
	if err != nil || n != 3 {
		t.Fatalf("Validate = %d, %v; want 3 pages", n, err)
	}
	f, _ := Parse(b)
	x, y := f.Pages[0].Resolution()
	if x != 204 || y != 98 {
		t.Fatalf("resolution %vx%v", x, y)
	}
	if _, err := Validate(write(t, b), 1700); !errors.Is(err, ErrWidth) {
		t.Fatalf("wrong width: %v", err)
	}
}

// TestTruncatedIsRejected cuts a real 3-page fax TIFF at many points; every
// cut must fail validation (Asterisk would send it as fewer pages and
// report success).
func TestTruncatedIsRejected(t *testing.T) {
	b := testkit.FaxTIFF(t, 3)
	for _, frac := range []float64{0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99} {
		cut := int(float64(len(b)) * frac)
		if _, err := Validate(write(t, b[:cut]), 1728); err == nil {
			t.Errorf("a TIFF cut at %d of %d bytes validated", cut, len(b))
		}
	}
	// Corrupt strip data in the middle of page 2 (bytes flipped, size kept).
	f, _ := Parse(b)
	bad := append([]byte(nil), b...)
	off := f.Pages[1].StripOffsets[0] + f.Pages[1].StripCounts[0]/3
	for i := uint32(0); i < 40; i++ {
		bad[off+i] ^= 0xff
	}
	if _, err := Validate(write(t, bad), 1728); err == nil {
		t.Error("a TIFF with a corrupted strip validated")
	}
	if _, err := Validate(write(t, []byte("%PDF-1.4")), 1728); !errors.Is(err, ErrNotTIFF) {
		t.Errorf("PDF: %v", err)
	}
}

func TestExtract(t *testing.T) {
	testkit.Require(t, "tiffinfo")
	b := testkit.FaxTIFF(t, 3)
	src := write(t, b)
	dst := filepath.Join(t.TempDir(), "rest.tif")
	n, err := Extract(src, dst, 2)
	if err != nil || n != 2 {
		t.Fatalf("Extract = %d, %v", n, err)
	}
	if m, err := Validate(dst, 1728); err != nil || m != 2 {
		t.Fatalf("extracted TIFF: %d pages, %v", m, err)
	}
	orig, _ := Parse(b)
	out, _ := os.ReadFile(dst)
	got, _ := Parse(out)
	for i := 0; i < 2; i++ {
		os, _ := orig.strips(orig.Pages[i+1])
		gs, _ := got.strips(got.Pages[i])
		if len(os) != len(gs) || !bytes.Equal(bytes.Join(os, nil), bytes.Join(gs, nil)) {
			t.Fatalf("page %d strips differ from the source's page %d", i+1, i+2)
		}
	}
	// libtiff reads it too.
	info, err := exec.Command("tiffinfo", dst).CombinedOutput()
	if err != nil || strings.Count(string(info), "TIFF Directory") != 2 || !strings.Contains(string(info), "CCITT Group 4") {
		t.Fatalf("tiffinfo: %v\n%s", err, info)
	}
	if _, err := Extract(src, dst, 4); err == nil {
		t.Fatal("extract past the last page succeeded")
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(testkit.FaxTIFF(f, 1))
	f.Add([]byte("II*\x00\x08\x00\x00\x00\x01\x00\x00\x01\x04\x00\x01\x00\x00\x00\xc0\x06\x00\x00\x08\x00\x00\x00"))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for i := range file.Pages {
			file.Decode(i)
		}
	})
}
