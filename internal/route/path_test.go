package route

import (
	"strings"
	"testing"
	"unsafe"
)

func TestNormalizePath(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/a/b", "/a/b", true},
		{"/a/b/", "/a/b/", true},
		{"//", "/", true},
		{"/a//b///c", "/a/b/c", true},
		{"/a//", "/a/", true},
		{"/./a", "/a", true},
		{"/a/./b", "/a/b", true},
		{"/a/.", "/a/", true},
		{"/a/b/..", "/a/", true},
		{"/a/b/../c", "/a/c", true},
		{"/../a", "/a", true},
		{"/../../", "/", true},
		{"/..", "/", true},
		{"/a/../../b", "/b", true},
		{"/a/..b/c", "/a/..b/c", true},
		{"/a/.b", "/a/.b", true},
		{"/%2e%2e/a", "/a", true},
		{"/x/%2E%2e/a", "/a", true},
		{"/x/.%2E/a", "/a", true},
		{"/x/%2e/a", "/x/a", true},
		{"/%7Euser", "/~user", true},
		{"/%41%62%2D%5f", "/Ab-_", true},
		{"/a%2fb", "/a%2Fb", true},
		{"/a%2Fb", "/a%2Fb", true},
		{"/a%5cb", "/a%5Cb", true},
		{"/a%5Cb", "/a%5Cb", true},
		{"/a%2F..%2Fb", "/a%2F..%2Fb", true},
		{"/%c3%a9", "/%C3%A9", true},
		{"/%20", "/%20", true},
		{"/a\\..\\b", "/a\\..\\b", true},
		{"/caf\xc3\xa9", "/caf\xc3\xa9", true},
		{"/a%25b", "/a%25b", true},
		{"/a%252e%252e", "/a%252e%252e", true},
		{"", "", false},
		{"*", "", false},
		{"a/b", "", false},
		{"/a\x00b", "", false},
		{"/a%00b", "", false},
		{"/a/b/..%00", "", false},
		{"/a\nb", "", false},
		{"/a\x7f", "", false},
		{"/a%", "", false},
		{"/a%2", "", false},
		{"/a%zz", "", false},
		{"/a%2g/..", "", false},
		{"//a%0", "", false},
	}
	for _, c := range cases {
		got, ok := NormalizePath(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
		if ok {
			checkNormal(t, c.in, got)
		}
	}
}

// checkNormal asserts the properties every normalised path has.
func checkNormal(t *testing.T, in, out string) {
	t.Helper()
	if !strings.HasPrefix(out, "/") {
		t.Fatalf("NormalizePath(%q) = %q: no leading slash", in, out)
	}
	for _, bad := range []string{"//", "/./", "/../"} {
		if strings.Contains(out, bad) {
			t.Fatalf("NormalizePath(%q) = %q: contains %q", in, out, bad)
		}
	}
	if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
		t.Fatalf("NormalizePath(%q) = %q: ends in a dot segment", in, out)
	}
	for i := 0; i < len(out); i++ {
		if out[i] == '%' {
			d := unhex(out[i+1])<<4 | unhex(out[i+2])
			if isLowerHex(out[i+1]) || isLowerHex(out[i+2]) || unreserved(d) || d == 0 {
				t.Fatalf("NormalizePath(%q) = %q: escape %q not normal", in, out, out[i:i+3])
			}
		}
	}
	again, ok := NormalizePath(out)
	if !ok || again != out {
		t.Fatalf("NormalizePath(%q) = %q, but NormalizePath of that = %q, %v", in, out, again, ok)
	}
	if isNormal(out) != normal {
		t.Fatalf("isNormal(%q) = %v: a normalised path must take the fast path", out, isNormal(out))
	}
}

func TestNormalizePathReturnsSameString(t *testing.T) {
	p := "/api/v1/users/%C3%A9/x%2Fy"
	got, ok := NormalizePath(p)
	if !ok || got != p || unsafe.StringData(got) != unsafe.StringData(p) {
		t.Fatalf("NormalizePath(%q) = %q, %v", p, got, ok)
	}
	if a := testing.AllocsPerRun(100, func() { NormalizePath(p) }); a != 0 {
		t.Errorf("NormalizePath on a normal path: %v allocs, want 0", a)
	}
	for _, p := range []string{"/", "/a/b/", "/a.b/..c/.d", "/x%20y"} {
		if a := testing.AllocsPerRun(100, func() { NormalizePath(p) }); a != 0 {
			t.Errorf("NormalizePath(%q): %v allocs, want 0", p, a)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a//b/../c/./d/", "/%2e%2E/%7e", "/a%2fb%5c", "*", "/a%00", "/..", "/%", "/a/.%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out, ok := NormalizePath(p)
		if !ok {
			if out != "" {
				t.Fatalf("rejected %q but returned %q", p, out)
			}
			return
		}
		checkNormal(t, p, out)
		// The fast path must say "normal" exactly when nothing changes.
		if (isNormal(p) == normal) != (out == p) {
			t.Fatalf("isNormal(%q) = %v but NormalizePath gives %q", p, isNormal(p), out)
		}
		// Normalising never drops an acceptable path's leading slash
		// nor introduces a NUL.
		if strings.IndexByte(out, 0) >= 0 {
			t.Fatalf("NormalizePath(%q) = %q contains NUL", p, out)
		}
	})
}
