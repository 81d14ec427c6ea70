// Package lcd drives a serial character LCD with keypad that speaks the
// Matrix Orbital command set (also spoken by common HD44780 USB/serial
// backpacks): 16x2 to 20x4. It writes only the cells that changed, defines
// custom characters for a progress bar, reads keypad keys (auto-transmit)
// through a configurable key map, and reopens the device when it disappears
// and comes back (USB unplug), redrawing the whole screen.
package lcd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tarm/serial"
)

// Matrix Orbital commands (every one starts with 0xFE).
const (
	cmd          = 0xFE
	cmdClear     = 0x58
	cmdCursor    = 0x47 // col row, 1-based
	cmdBacklight = 0x42 // minutes (0 = always)
	cmdAutoKeys  = 0x41
	cmdClearKeys = 0x45
	cmdCustom    = 0x4E // n + 8 rows
)

// ErrSize is returned for an unsupported display size.
var ErrSize = errors.New("lcd: size must be 16x2 to 20x4")

// Config of a display.
type Config struct {
	Device     string
	Baud       int
	Rows, Cols int
	// KeyMap maps keypad bytes ('A'..'Y') to key names (up, down, enter, back).
	KeyMap map[byte]string
	Log    *slog.Logger
	// Retry is how often a missing device is looked for (default 1 s).
	Retry time.Duration
}

// Port is the serial connection (tarm/serial in production).
type Port interface {
	io.ReadWriteCloser
}

// Display is an open LCD.
type Display struct {
	cfg  Config
	open func() (Port, error)
	keys chan string

	mu      sync.Mutex
	port    Port
	shadow  [][]rune // what the LCD shows
	want    []string // what it should show
	closed  bool
	devInfo os.FileInfo // the device node opened, to notice it going away
	stop    chan struct{}
	wg      sync.WaitGroup
	Connect int // times the device was (re)opened
}

// Open starts driving the LCD at cfg.Device. A missing device is not an
// error: the display keeps trying and says so in the log.
func Open(cfg Config) (*Display, error) {
	return open(cfg, func() (Port, error) {
		return serial.OpenPort(&serial.Config{Name: cfg.Device, Baud: cfg.Baud, ReadTimeout: 100 * time.Millisecond})
	})
}

func open(cfg Config, opener func() (Port, error)) (*Display, error) {
	if cfg.Rows < 2 || cfg.Rows > 4 || cfg.Cols < 16 || cfg.Cols > 20 {
		return nil, ErrSize
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	d := &Display{cfg: cfg, open: opener, keys: make(chan string, 16), stop: make(chan struct{})}
	d.want = make([]string, cfg.Rows)
	d.wg.Add(1)
	go d.run()
	return d, nil
}

// Keys delivers keypad keys, mapped by the key map.
func (d *Display) Keys() <-chan string { return d.keys }

// Connected reports whether the device is open.
func (d *Display) Connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.port != nil
}

// Draw shows rows (padded or cut to the width); only changed cells are sent.
func (d *Display) Draw(rows []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.want {
		d.want[i] = ""
		if i < len(rows) {
			d.want[i] = rows[i]
		}
	}
	if d.port == nil {
		return nil // drawn when the device comes back
	}
	if err := d.flushLocked(); err != nil {
		d.dropLocked(err)
		return err
	}
	return nil
}

func (d *Display) cells(row string) []rune {
	r := []rune(row)
	out := make([]rune, d.cfg.Cols)
	for i := range out {
		out[i] = ' '
		if i < len(r) && r[i] >= 0x20 && r[i] < 0x7f {
			out[i] = r[i]
		} else if i < len(r) && (r[i] < 8) {
			out[i] = r[i] // custom characters 0-7 (progress bar)
		}
	}
	return out
}

// flushLocked sends the runs of cells that differ from the shadow.
func (d *Display) flushLocked() error {
	var buf []byte
	for row := 0; row < d.cfg.Rows; row++ {
		want := d.cells(d.want[row])
		have := d.shadow[row]
		for col := 0; col < d.cfg.Cols; {
			if want[col] == have[col] {
				col++
				continue
			}
			end := col
			for end < d.cfg.Cols && want[end] != have[end] {
				end++
			}
			buf = append(buf, cmd, cmdCursor, byte(col+1), byte(row+1))
			for _, r := range want[col:end] {
				buf = append(buf, byte(r))
			}
			col = end
		}
		d.shadow[row] = want
	}
	if len(buf) == 0 {
		return nil
	}
	_, err := d.port.Write(buf)
	return err
}

// Bar returns a progress bar of width cells for n of m using the custom
// characters defined at connect (0 = empty .. 5 = full cell).
func Bar(n, m, width int) string {
	if m <= 0 {
		return ""
	}
	fifths := n * width * 5 / m
	out := make([]rune, width)
	for i := range out {
		f := fifths - i*5
		switch {
		case f >= 5:
			out[i] = 5
		case f <= 0:
			out[i] = ' '
		default:
			out[i] = rune(f)
		}
	}
	return string(out)
}

// barChars are custom characters 1..5: a cell filled 1/5 .. 5/5 from the left.
func barChars() []byte {
	var b []byte
	for n := 1; n <= 5; n++ {
		row := byte(0)
		for i := 0; i < n; i++ {
			row |= 0x10 >> i
		}
		b = append(b, cmd, cmdCustom, byte(n))
		for r := 0; r < 8; r++ {
			b = append(b, row)
		}
	}
	return b
}

// connectLocked initializes a freshly opened device and redraws everything.
func (d *Display) connectLocked(p Port) error {
	init := []byte{cmd, cmdClear, cmd, cmdBacklight, 0, cmd, cmdAutoKeys, cmd, cmdClearKeys}
	init = append(init, barChars()...)
	if _, err := p.Write(init); err != nil {
		return err
	}
	d.port = p
	d.Connect++
	d.devInfo, _ = os.Stat(d.cfg.Device)
	d.shadow = make([][]rune, d.cfg.Rows)
	for i := range d.shadow {
		d.shadow[i] = []rune(fmt.Sprintf("%*s", d.cfg.Cols, ""))
	}
	return d.flushLocked()
}

func (d *Display) dropLocked(err error) {
	if d.port == nil {
		return
	}
	d.cfg.Log.Warn("lcd: device lost; will reconnect", "device", d.cfg.Device, "err", err)
	d.port.Close()
	d.port = nil
}

// run keeps the device open and reads keys.
func (d *Display) run() {
	defer d.wg.Done()
	buf := make([]byte, 16)
	warned := false
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		d.mu.Lock()
		p := d.port
		d.mu.Unlock()
		if p == nil {
			np, err := d.open()
			if err == nil {
				d.mu.Lock()
				err = d.connectLocked(np)
				d.mu.Unlock()
				if err != nil {
					np.Close()
				}
			}
			if err != nil {
				if !warned {
					d.cfg.Log.Warn("lcd: device not available; the panel runs without it", "device", d.cfg.Device, "err", err)
					warned = true
				}
				select {
				case <-d.stop:
					return
				case <-time.After(d.cfg.Retry):
				}
				continue
			}
			warned = false
			continue
		}
		n, err := p.Read(buf)
		for _, b := range buf[:n] {
			if name, ok := d.cfg.KeyMap[b]; ok {
				select {
				case d.keys <- name:
				default: // nobody reads keys right now: drop the oldest intent
				}
			}
		}
		if err == io.EOF { // tarm/serial: EOF = read timeout (also on a hung-up device)
			if st, serr := os.Stat(d.cfg.Device); serr != nil || d.devInfo == nil || !os.SameFile(st, d.devInfo) {
				err = fmt.Errorf("device node gone or replaced")
			} else {
				err = nil
			}
		}
		if err != nil {
			d.mu.Lock()
			if d.port == p {
				d.dropLocked(err)
			}
			d.mu.Unlock()
		}
	}
}

// Close stops the driver.
func (d *Display) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	if d.port != nil {
		d.port.Close()
		d.port = nil
	}
	d.mu.Unlock()
	close(d.stop)
	d.wg.Wait()
	return nil
}
