package lcd

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// fakeLCD plays the LCD on a pseudo-terminal's master side.
type fakeLCD struct {
	master, slave *os.File
	mu            sync.Mutex
	got           bytes.Buffer
}

func newFake(t *testing.T) *fakeLCD {
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	f := &fakeLCD{master: m, slave: s}
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := m.Read(buf)
			f.mu.Lock()
			f.got.Write(buf[:n])
			f.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return f
}

// expect waits until the bytes received so far end with want, then clears.
func (f *fakeLCD) expect(t *testing.T, what string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		f.mu.Lock()
		got := append([]byte(nil), f.got.Bytes()...)
		f.mu.Unlock()
		if bytes.HasSuffix(got, want) {
			f.mu.Lock()
			f.got.Reset()
			f.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got % x\nwant suffix % x", what, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fakeLCD) quiet(t *testing.T, what string) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.got.Len() != 0 {
		t.Fatalf("%s: unexpected bytes % x", what, f.got.Bytes())
	}
}

func cursor(col, row int, s string) []byte {
	return append([]byte{0xFE, 0x47, byte(col), byte(row)}, s...)
}

func TestLCDOnPTY(t *testing.T) {
	f := newFake(t)
	link := filepath.Join(t.TempDir(), "lcd")
	os.Symlink(f.slave.Name(), link)
	d, err := Open(Config{Device: link, Baud: 19200, Rows: 2, Cols: 16, KeyMap: map[byte]string{'A': "up", 'B': "enter"}, Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	init := append([]byte{0xFE, 0x58, 0xFE, 0x42, 0, 0xFE, 0x41, 0xFE, 0x45}, barChars()...)
	f.expect(t, "init", init)

	d.Draw([]string{"hello", "world"})
	f.expect(t, "first screen", append(cursor(1, 1, "hello"), cursor(1, 2, "world")...))
	d.Draw([]string{"hallo", "world"})
	f.expect(t, "one changed cell", cursor(2, 1, "a"))
	d.Draw([]string{"hallo", "world"})
	f.quiet(t, "same screen again")
	d.Draw([]string{"hallo", "wo" + Bar(1, 2, 4)})
	f.expect(t, "progress bar (only the changed cells)", cursor(3, 2, "\x05\x05 "))

	// Keypad: auto-transmitted keys through the key map; unknown ones ignored.
	f.master.Write([]byte("ZAB"))
	for _, want := range []string{"up", "enter"} {
		select {
		case k := <-d.Keys():
			if k != want {
				t.Fatalf("key %q, want %q", k, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no key %q", want)
		}
	}

	// Unplug: the device goes away, then comes back (a new pty behind the
	// same path): the driver reconnects and redraws everything.
	f.master.Close()
	f.slave.Close()
	os.Remove(link) // udev removes the node on unplug
	deadline := time.Now().Add(3 * time.Second)
	for d.Connected() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d.Connected() {
		t.Fatal("the driver did not notice the device went away")
	}
	d.Draw([]string{"back", "again"}) // while gone: remembered
	g := newFake(t)
	defer g.master.Close()
	os.Symlink(g.slave.Name(), link)
	g.expect(t, "redraw after reconnect", append(append(init, cursor(1, 1, "back")...), cursor(1, 2, "again")...))
	if d.Connect != 2 {
		t.Fatalf("connects = %d", d.Connect)
	}
}

func TestSize(t *testing.T) {
	for _, c := range [][2]int{{1, 16}, {2, 15}, {5, 20}, {4, 21}} {
		if _, err := Open(Config{Device: "/nonexistent", Rows: c[0], Cols: c[1]}); err != ErrSize {
			t.Errorf("%dx%d: %v", c[1], c[0], err)
		}
	}
	d, err := Open(Config{Device: "/nonexistent/lcd", Baud: 9600, Rows: 4, Cols: 20, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Draw([]string{"no device"}); err != nil || d.Connected() {
		t.Fatalf("missing device: %v %v", err, d.Connected())
	}
}
