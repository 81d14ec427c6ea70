package callpolicy

import (
	"testing"

	"github.com/faxbox/faxbox/firmware/failure"
)

// key is one thing a caller keys in: a PIN or a destination.
type key struct {
	dest  bool
	value string
}

func pin(v string) key  { return key{value: v} }
func dest(v string) key { return key{dest: true, value: v} }

func allowAll(string) bool  { return true }
func allowNone(string) bool { return false }

// TestFlow plays what callers key in through a Flow and checks every step
// and the refusal it ends with.
func TestFlow(t *testing.T) {
	withPIN := Callback{PIN: "1234", AllowDest: allowAll}
	for _, tc := range []struct {
		name   string
		cb     Callback
		keys   []key
		steps  []Step
		refuse failure.Code
	}{
		{"right PIN, allowed destination", withPIN, []key{pin("1234"), dest("200")},
			[]Step{AskDest, Connect}, ""},
		{"two wrong PINs only prompt again", withPIN, []key{pin("1111"), pin("2222")},
			[]Step{AskPIN, AskPIN}, ""},
		{"two wrong PINs, then the right one", withPIN, []key{pin("1111"), pin("2222"), pin("1234"), dest("200")},
			[]Step{AskPIN, AskPIN, AskDest, Connect}, ""},
		{"the third wrong PIN hangs up", withPIN, []key{pin("1111"), pin("2222"), pin("3333")},
			[]Step{AskPIN, AskPIN, HangUp}, failure.CallPINRejected},
		{"after the third wrong PIN even the right one hangs up", withPIN, []key{pin("1"), pin("2"), pin("3"), pin("1234"), dest("200")},
			[]Step{AskPIN, AskPIN, HangUp, HangUp, HangUp}, failure.CallPINRejected},
		{"an empty PIN is wrong", withPIN, []key{pin("")}, []Step{AskPIN}, ""},
		{"a longer PIN starting with the PIN is wrong", withPIN, []key{pin("12345")}, []Step{AskPIN}, ""},
		{"a prefix of the PIN is wrong", withPIN, []key{pin("123")}, []Step{AskPIN}, ""},
		{"no PIN configured: an empty PIN is wrong", Callback{AllowDest: allowAll}, []key{pin(""), pin(""), pin("")},
			[]Step{AskPIN, AskPIN, HangUp}, failure.CallPINRejected},
		{"no PIN configured: any PIN is wrong", Callback{AllowDest: allowAll}, []key{pin("1234"), pin("0000")},
			[]Step{AskPIN, AskPIN}, ""},
		{"a destination before the PIN is refused", withPIN, []key{dest("200"), pin("1234")},
			[]Step{HangUp, HangUp}, failure.CallDestRefused},
		{"a PIN at the destination prompt changes nothing", withPIN, []key{pin("1234"), pin("9999"), dest("200")},
			[]Step{AskDest, Stay, Connect}, ""},
		{"a second destination changes nothing", withPIN, []key{pin("1234"), dest("200"), dest("201")},
			[]Step{AskDest, Connect, Stay}, ""},
		{"destination not allowed", Callback{PIN: "1234", AllowDest: allowNone}, []key{pin("1234"), dest("200")},
			[]Step{AskDest, HangUp}, failure.CallDestRefused},
		{"no allow function: nothing allowed", Callback{PIN: "1234"}, []key{pin("1234"), dest("200")},
			[]Step{AskDest, HangUp}, failure.CallDestRefused},
		{"refused destination: a second one is refused too", withPIN, []key{pin("1234"), dest("2a0"), dest("200")},
			[]Step{AskDest, HangUp, HangUp}, failure.CallDestRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Flow
			for i, k := range tc.keys {
				var got Step
				if k.dest {
					got = f.KeyedDest(tc.cb, k.value)
				} else {
					got = f.KeyedPIN(tc.cb, k.value)
				}
				if got != tc.steps[i] {
					t.Fatalf("key %d (%+v): step %v, want %v", i, k, got, tc.steps[i])
				}
			}
			if f.Refused() != tc.refuse {
				t.Errorf("refused %q, want %q", f.Refused(), tc.refuse)
			}
		})
	}
}

// TestDestinationMustBeANumber: what is not a number by rules.Number is
// refused even when the allow function says yes, and the allow function is
// asked only about numbers.
func TestDestinationMustBeANumber(t *testing.T) {
	for _, d := range []string{"", "2a0", "200#", "*200", "20 0", "20", "200\n", "${EXTEN}", "200&PJSIP/1", "123456789012345678901"} {
		var asked []string
		cb := Callback{PIN: "1234", AllowDest: func(s string) bool { asked = append(asked, s); return true }}
		var f Flow
		f.KeyedPIN(cb, "1234")
		if s := f.KeyedDest(cb, d); s != HangUp || f.Refused() != failure.CallDestRefused {
			t.Errorf("%q: step %v, refused %q", d, s, f.Refused())
		}
		if len(asked) != 0 {
			t.Errorf("%q: the allow function was asked about %q", d, asked)
		}
	}
	var asked []string
	cb := Callback{PIN: "1234", AllowDest: func(s string) bool { asked = append(asked, s); return true }}
	var f Flow
	f.KeyedPIN(cb, "1234")
	if s := f.KeyedDest(cb, "0301234567"); s != Connect || len(asked) != 1 || asked[0] != "0301234567" {
		t.Errorf("a number: step %v, asked %q", s, asked)
	}
}

func TestWrongPINsCounted(t *testing.T) {
	cb := Callback{PIN: "1234"}
	var f Flow
	f.KeyedPIN(cb, "0")
	f.KeyedPIN(cb, "1234")
	f.KeyedPIN(cb, "0") // at the destination prompt: not a try
	if f.WrongPINs() != 1 {
		t.Errorf("wrong PINs %d, want 1", f.WrongPINs())
	}
}
