package memtrim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Release unmaps the read-only pages of the executable (text, rodata,
// pclntab) from this process; they fault back in from the page cache
// when used. Writable mappings are never touched: MADV_DONTNEED would
// discard their changes.
func Release() (Result, error) {
	var r Result
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return r, fmt.Errorf("memtrim: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return r, fmt.Errorf("memtrim: %w", err)
	}
	defer f.Close()
	type span struct{ start, end uintptr }
	var spans []span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := readOnlyMapping(sc.Text(), exe)
		if ok {
			spans = append(spans, span{start, end})
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("memtrim: reading /proc/self/maps: %w", err)
	}
	r.RSSBefore = rss()
	for _, s := range spans {
		// syscall.Madvise takes a []byte; the raw call avoids forging one
		// over memory Go did not allocate.
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED); e != 0 {
			return r, fmt.Errorf("memtrim: madvise %#x-%#x: %w", s.start, s.end, e)
		}
		r.Mappings++
		r.Bytes += int64(s.end - s.start)
	}
	r.RSSAfter = rss()
	return r, nil
}

// readOnlyMapping parses one /proc/self/maps line and reports a private,
// read-only (r-xp or r--p) mapping of the file exe.
//
//	00400000-00ec1000 r-xp 00000000 fd:01 1234   /usr/local/bin/causeway
func readOnlyMapping(line, exe string) (start, end uintptr, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 || strings.Join(fields[5:], " ") != exe {
		return 0, 0, false
	}
	if perm := fields[1]; perm != "r-xp" && perm != "r--p" {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || b <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}

// rss is the resident set in bytes (statm's second field, in pages).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}
