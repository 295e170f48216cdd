package main

import (
	"testing"
)

func TestParsePool(t *testing.T) {
	got, err := parsePool("127.0.2.0/30, 10.0.0.7,127.0.3.4/31")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.2.1", "127.0.2.2", "10.0.0.7", "127.0.3.4", "127.0.3.5"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("got[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if all, err := parsePool("127.0.2.0/24"); err != nil || len(all) != 254 {
		t.Errorf("/24: %d addresses, %v; want 254", len(all), err)
	}
	for _, bad := range []string{"nope", "10.0.0.0/8", "1.2.3.4/33"} {
		if _, err := parsePool(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if p, err := parsePool(""); err != nil || p != nil {
		t.Errorf("empty: %v, %v", p, err)
	}
}
