package memtrim

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	const exe = "/usr/local/bin/causeway"
	for _, tc := range []struct {
		line string
		ok   bool
		a, b uintptr
	}{
		{"00400000-00ec1000 r-xp 00000000 fd:01 1234   /usr/local/bin/causeway", true, 0x400000, 0xec1000},
		{"00ec1000-019fd000 r--p 00ac1000 fd:01 1234   /usr/local/bin/causeway", true, 0xec1000, 0x19fd000},
		{"019fd000-01a89000 rw-p 015fd000 fd:01 1234   /usr/local/bin/causeway", false, 0, 0}, // data: written pages would be lost
		{"7f00-8f00 r-xp 00000000 fd:01 99 /usr/lib/libc.so.6", false, 0, 0},
		{"7f00-8f00 r--p 00000000 00:00 0", false, 0, 0},
		{"zz-8f00 r--p 00000000 fd:01 1234 /usr/local/bin/causeway", false, 0, 0},
		{"9000-8f00 r--p 00000000 fd:01 1234 /usr/local/bin/causeway", false, 0, 0},
	} {
		a, b, ok := readOnlyMapping(tc.line, exe)
		if ok != tc.ok || a != tc.a || b != tc.b {
			t.Errorf("%q: got %#x-%#x %v, want %#x-%#x %v", tc.line, a, b, ok, tc.a, tc.b, tc.ok)
		}
	}
}

// The test binary releases its own executable pages and keeps running
// code from them: they fault back in.
func TestReleaseKeepsRunning(t *testing.T) {
	r, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if r.Mappings == 0 || r.Bytes == 0 {
		t.Fatalf("nothing released: %+v", r)
	}
	if r.RSSAfter >= r.RSSBefore {
		t.Errorf("RSS did not drop: %+v", r)
	}
	// Code and read-only data (a table in strconv, a GC walking
	// pclntab) are used again after the release.
	runtime.GC()
	if got := strconv.Quote("é\x00"); got != `"é\x00"` {
		t.Errorf("strconv.Quote after release = %s", got)
	}
	if b, err := os.ReadFile("/proc/self/statm"); err != nil || len(b) == 0 {
		t.Fatalf("statm after release: %v", err)
	}
}
