package lab

import "testing"

func TestPortRanges(t *testing.T) {
	rs, err := parsePortRanges("8080,48060-48559,40000-40010\n")
	if err != nil {
		t.Fatal(err)
	}
	got := formatPortRanges(mergePortRanges(append(rs, [2]int{48560, 49059}, [2]int{8081, 8081}, [2]int{40005, 40020})))
	if want := "8080-8081,40000-40020,48060-49059"; got != want {
		t.Fatalf("merged %q, want %q", got, want)
	}
	if rs, err := parsePortRanges(""); err != nil || len(rs) != 0 {
		t.Fatalf("empty list: %v %v", rs, err)
	}
	if _, err := parsePortRanges("12,x-3"); err == nil {
		t.Fatal("a malformed list was read")
	}
}
