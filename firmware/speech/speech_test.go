package speech

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
	"github.com/faxbox/faxbox/internal/testkit"
)

// wavInfo is what a WAV file's fmt and data chunks say.
type wavInfo struct {
	format, channels, bits int
	rate                   int
	seconds                float64
}

// readWAV parses a RIFF WAV file's chunks.
func readWAV(t *testing.T, path string) wavInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s: not a RIFF WAVE file (%q)", path, b[:min(len(b), 12)])
	}
	var w wavInfo
	data := -1
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8 : min(len(b), p+8+size)]
		switch id {
		case "fmt ":
			w.format = int(binary.LittleEndian.Uint16(body[0:2]))
			w.channels = int(binary.LittleEndian.Uint16(body[2:4]))
			w.rate = int(binary.LittleEndian.Uint32(body[4:8]))
			w.bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			data = len(body)
		}
		p += 8 + size + size%2
	}
	if w.rate == 0 || data < 0 {
		t.Fatalf("%s: no fmt or data chunk", path)
	}
	w.seconds = float64(data) / float64(w.rate*w.channels*w.bits/8)
	return w
}

// checkAsteriskWAV fails unless path is 8 kHz mono 16-bit PCM lasting
// between lo and hi seconds.
func checkAsteriskWAV(t *testing.T, path string, lo, hi float64) {
	t.Helper()
	w := readWAV(t, path)
	if w.format != 1 || w.channels != 1 || w.rate != 8000 || w.bits != 16 {
		t.Fatalf("%s: format %d, %d channels, %d Hz, %d bit; want PCM (1), 1 channel, 8000 Hz, 16 bit", path, w.format, w.channels, w.rate, w.bits)
	}
	if w.seconds < lo || w.seconds > hi {
		t.Fatalf("%s: %.2f s of audio, want %.2f to %.2f", path, w.seconds, lo, hi)
	}
}

// tone writes a 44.1 kHz stereo tone of the given length with sox, in the
// format the name's extension says.
func tone(t *testing.T, path string, seconds string) {
	t.Helper()
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "2", path, "synth", seconds, "sine", "440").CombinedOutput(); err != nil {
		t.Fatalf("sox synth %s: %v %s", path, err, out)
	}
}

// TestSpeakWritesAsteriskWAV: spoken text is an 8 kHz mono 16-bit WAV of
// plausible length, in a directory Speak creates; no temporary file stays.
func TestSpeakWritesAsteriskWAV(t *testing.T) {
	testkit.Require(t, "espeak-ng", "sox")
	dir := filepath.Join(t.TempDir(), "doc", "cl_1")
	dst := filepath.Join(dir, MessageFile)
	if err := Speak(context.Background(), "Disk full on the mail server. Press 1 to acknowledge.", dst); err != nil {
		t.Fatal(err)
	}
	checkAsteriskWAV(t, dst, 1.5, 10)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files left in %s: %v", dir, entries)
	}
}

// TestResampleMP3: an uploaded MP3 (44.1 kHz stereo) becomes an 8 kHz mono
// 16-bit WAV of the same length.
func TestResampleMP3(t *testing.T) {
	testkit.Require(t, "sox")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "alert.mp3"), filepath.Join(dir, "out.wav")
	tone(t, src, "1.5")
	if err := Resample(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	checkAsteriskWAV(t, dst, 1.4, 1.7)
}

// TestResampleGarbage: a file that is no audio fails with an error naming
// sox and quoting sox's complaint; no output is left.
func TestResampleGarbage(t *testing.T) {
	testkit.Require(t, "sox")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "x.mp3"), filepath.Join(dir, "out.wav")
	if err := os.WriteFile(src, []byte("not audio at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Resample(context.Background(), src, dst)
	if err == nil || !strings.HasPrefix(err.Error(), "speech: sox: exit status") || !strings.Contains(err.Error(), "x.mp3") {
		t.Fatalf("Resample of garbage: %v; want sox's failure naming the file", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output after a failed resample: %v", err)
	}
}

// TestSpeakWithoutSpeaker: with neither espeak-ng nor espeak on PATH the
// error says so.
func TestSpeakWithoutSpeaker(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Speak(context.Background(), "hello", filepath.Join(t.TempDir(), MessageFile))
	if !errors.Is(err, ErrNoSpeaker) {
		t.Fatalf("Speak without espeak: %v, want ErrNoSpeaker", err)
	}
}

// TestSpeakBoundedByContext: a speaker that hangs is stopped when the
// context ends, and the error says the deadline passed.
func TestSpeakBoundedByContext(t *testing.T) {
	bin := t.TempDir()
	hang := "#!/bin/sh\nsleep 30 &\nexec sleep 30\n" // a child keeps the output pipe open too
	if err := os.WriteFile(filepath.Join(bin, "espeak-ng"), []byte(hang), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Speak(ctx, "hello", filepath.Join(t.TempDir(), MessageFile))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "speech: espeak-ng: ") {
		t.Fatalf("Speak with a hanging espeak-ng: %v; want the deadline, naming espeak-ng", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Speak returned after %v; want soon after the 300 ms deadline", d)
	}
}

// TestMessage: a message call's text or recording becomes dir/message.wav;
// a recording wins over text; calls without a message get no file; text
// that looks like shell runs nothing.
func TestMessage(t *testing.T) {
	testkit.Require(t, "espeak-ng", "sox")
	ctx := context.Background()

	said := t.TempDir()
	p := filepath.Join(said, "pwned")
	if err := Message(ctx, said, &job.CallSpec{Kind: job.CallMessage, Say: "Alert $(touch " + p + ") `touch " + p + "2`; touch " + p + "3"}); err != nil {
		t.Fatal(err)
	}
	checkAsteriskWAV(t, filepath.Join(said, MessageFile), 1, 60)
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		if _, err := os.Stat(filepath.Join(said, f)); err == nil {
			t.Fatalf("the text ran a shell command (%s exists)", f)
		}
	}

	played := t.TempDir()
	tone(t, filepath.Join(played, "play-00.wav"), "0.5")
	if err := Message(ctx, played, &job.CallSpec{Kind: job.CallMessage, Play: "play-00.wav", Say: "ignored"}); err != nil {
		t.Fatal(err)
	}
	checkAsteriskWAV(t, filepath.Join(played, MessageFile), 0.45, 0.55)

	for _, c := range []*job.CallSpec{nil, {Kind: job.CallClick2Call, Agent: "200"}, {Kind: job.CallCallback}} {
		dir := t.TempDir()
		if err := Message(ctx, dir, c); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%+v: files %v, want none", c, entries)
		}
	}
}

// TestSound: Asterisk's name for the message is the rendered file's,
// without its extension.
func TestSound(t *testing.T) {
	if got := Sound("/data/documents/fx_1"); got != "/data/documents/fx_1/message" {
		t.Fatalf("Sound = %q", got)
	}
	if dir := t.TempDir(); Sound(dir)+filepath.Ext(MessageFile) != filepath.Join(dir, MessageFile) {
		t.Fatalf("Sound(%s) does not name %s", dir, MessageFile)
	}
}
