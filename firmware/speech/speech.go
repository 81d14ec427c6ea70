// Package speech renders what a message call plays to the callee: text
// spoken by espeak-ng, or an uploaded recording (WAV, MP3, anything sox
// reads), as the one format the box's Asterisk plays: WAV, 8 kHz, mono,
// 16-bit signed PCM. Both tools run as processes with their input as
// arguments or stdin, never through a shell, and each run is bounded by
// Timeout and by the caller's context.
package speech

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/faxbox/faxbox/firmware/job"
)

// Timeout bounds each espeak-ng or sox run (the caller's context may end
// it earlier).
const Timeout = time.Minute

// MessageFile is the name of a message call's rendered audio in the job's
// document directory; Asterisk plays it by Sound's name.
const MessageFile = "message.wav"

// Sound is the name Asterisk plays a message call's audio in document
// directory dir by: MessageFile without its extension (Playback picks the
// file by its format).
func Sound(dir string) string {
	return filepath.Join(dir, strings.TrimSuffix(MessageFile, filepath.Ext(MessageFile)))
}

// ErrNoSpeaker: neither espeak-ng nor espeak (Buildroot packages the
// latter) is installed.
var ErrNoSpeaker = errors.New("speech: neither espeak-ng nor espeak is installed")

// Message renders the audio of call c into dir/MessageFile: the uploaded
// recording c.Play (a file name in dir) resampled, or else the text c.Say
// spoken. Calls without a message (click-to-call, callback; c nil) need
// nothing and get nothing. An error names the tool that failed and ends
// with the tool's own output.
func Message(ctx context.Context, dir string, c *job.CallSpec) error {
	dst := filepath.Join(dir, MessageFile)
	switch {
	case c == nil:
		return nil
	case c.Play != "":
		return Resample(ctx, filepath.Join(dir, c.Play), dst)
	case c.Say != "":
		return Speak(ctx, c.Say, dst)
	}
	return nil
}

// Speak speaks text (English voice) into dst, a WAV of 8 kHz, mono, 16 bit,
// creating dst's directory when missing. The text reaches espeak-ng on
// stdin, never as shell input. It falls back to espeak when espeak-ng is
// not installed, and fails with ErrNoSpeaker when neither is.
func Speak(ctx context.Context, text, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	tts, err := speaker()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("speech: %w", err)
	}
	tmp := dst + ".raw.wav"
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, tts, "-v", "en", "-w", tmp, "--stdin")
	cmd.Stdin = strings.NewReader(text)
	if err := run(ctx, cmd); err != nil {
		return err
	}
	return Resample(ctx, tmp, dst)
}

// Resample converts the recording src (any format sox reads; MP3 through
// libsox-fmt-mp3) into dst, a WAV of 8 kHz, mono, 16 bit.
func Resample(ctx context.Context, src, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	return run(ctx, exec.CommandContext(ctx, "sox", src, "-r", "8000", "-c", "1", "-b", "16", dst))
}

// speaker returns the text-to-speech program to run.
func speaker() (string, error) {
	for _, name := range []string{"espeak-ng", "espeak"} {
		if _, err := exec.LookPath(name); err == nil {
			return name, nil
		}
	}
	return "", ErrNoSpeaker
}

// run runs cmd and turns a failure into an error naming the tool, saying
// when ctx ended it, and quoting the start of the tool's output.
func run(ctx context.Context, cmd *exec.Cmd) error {
	tool := filepath.Base(cmd.Path)
	// A child the tool left behind must not keep the output pipe (and so
	// this call) open past the context's end.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return fmt.Errorf("speech: %s: %w: %.200s", tool, err, strings.TrimSpace(string(out)))
}
