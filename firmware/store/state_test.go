package store

import "testing"

func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openOpts(t, dir, Options{})
	var none map[string]int
	if ok, err := s.GetState("caps", &none); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	if err := s.PutState("caps", map[string]int{"107": 3}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openOpts(t, dir, Options{})
	var got map[string]int
	if ok, err := s.GetState("caps", &got); !ok || err != nil || got["107"] != 3 {
		t.Fatalf("after reopen: %v %v %v", got, ok, err)
	}
}
