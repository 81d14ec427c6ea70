package box

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/clock"
	"github.com/faxbox/faxbox/firmware/convert"
	"github.com/faxbox/faxbox/firmware/engine"
	"github.com/faxbox/faxbox/firmware/failure"
	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/firmware/tiff"
)

// faxWidth is the width of every fax page in pixels.
const faxWidth = 1728

// documents adapts the converter and the TIFF tools to engine.Documents.
type documents struct {
	conv *convert.Converter
	clk  clock.Clock
}

func (d documents) Convert(ctx context.Context, j *job.Job, inputs []engine.Input, out string) (int, failure.Code, error) {
	if j.Kind == job.KindCall {
		dst := filepath.Join(filepath.Dir(out), "message.wav")
		switch {
		case j.Call == nil:
		case j.Call.Play != "":
			// An uploaded recording (WAV or MP3) becomes 8 kHz mono.
			if err := resample(ctx, filepath.Join(filepath.Dir(out), j.Call.Play), dst); err != nil {
				return 0, failure.DocumentUnreadable, err
			}
		case j.Call.Say != "":
			if err := speak(ctx, j.Call.Say, dst); err != nil {
				return 0, failure.DocumentUnreadable, err
			}
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

func (d documents) Validate(path string) (int, error) { return tiff.Validate(path, faxWidth) }

func (d documents) Extract(src, dst string, from int) (int, error) {
	return tiff.Extract(src, dst, from)
}

type renderer struct{}

func (renderer) ToPDF(ctx context.Context, tiffPath, pdfPath string) error {
	return convert.ToPDF(ctx, tiffPath, pdfPath)
}

// speak renders text to an 8 kHz mono 16-bit WAV (what Asterisk plays) with
// espeak-ng and sox. The text is an argument, never shell input.
func speak(ctx context.Context, text, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	tmp := dst + ".raw.wav"
	defer os.Remove(tmp)
	tts := "espeak-ng"
	if _, err := exec.LookPath(tts); err != nil {
		tts = "espeak" // Buildroot packages espeak, not espeak-ng
	}
	cmd := exec.CommandContext(ctx, tts, "-v", "en", "-w", tmp, "--stdin")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %.200s", tts, err, out)
	}
	return resample(ctx, tmp, dst)
}

// resample converts a recording to what Asterisk plays: WAV, 8 kHz, mono,
// 16 bit (sox; MP3 through libsox-fmt-mp3).
func resample(ctx context.Context, src, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "sox", src, "-r", "8000", "-c", "1", "-b", "16", dst).CombinedOutput(); err != nil {
		return fmt.Errorf("sox: %v: %.200s", err, out)
	}
	return nil
}
