package job

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseLineID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want LineID
		ok   bool
	}{
		{"trunk/1", LineID{"trunk", 1}, true},
		{"test/12", LineID{"test", 12}, true},
		{"g_2-x/9999", LineID{"g_2-x", 9999}, true},
		{"trunk/01", LineID{}, false},
		{"trunk/+1", LineID{}, false},
		{"trunk/-1", LineID{}, false},
		{"trunk/0", LineID{}, false},
		{"trunk/10000", LineID{}, false},
		{"trunk/1x", LineID{}, false},
		{"trunk/", LineID{}, false},
		{"/1", LineID{}, false},
		{"trunk", LineID{}, false},
		{"a/b/1", LineID{}, false},
		{"tr unk/1", LineID{}, false},
		{"trunk/ 1", LineID{}, false},
	} {
		got, err := ParseLineID(c.in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("ParseLineID(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadLine) {
			t.Errorf("ParseLineID(%q) error %v is not ErrBadLine", c.in, err)
		}
		if c.ok && got.String() != c.in {
			t.Errorf("String() = %q, want %q", got.String(), c.in)
		}
	}
}

func TestLineIDJSON(t *testing.T) {
	a := Attempt{Line: LineAt("trunk", 2)}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Attempt
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Line != (LineID{"trunk", 3}) || back.Line.Index() != 2 {
		t.Fatalf("round trip: %s → %+v", b, back.Line)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["line"] != "trunk/3" {
		t.Fatalf("line is %v in JSON, want \"trunk/3\"", m["line"])
	}
}
