package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// bed is a pods dir with one log file whose chunks are stamped at times
// the test chooses (through the file's mtime).
type bed struct {
	t    *testing.T
	dir  string
	path string
	x    *index
	srv  *httptest.Server
}

func newBed(t *testing.T) *bed {
	t.Helper()
	dir := t.TempDir()
	b := &bed{t: t, dir: dir, path: filepath.Join(dir, "uid-1", "echo.log"), x: newIndex(dir)}
	if err := os.MkdirAll(filepath.Dir(b.path), 0o755); err != nil {
		t.Fatal(err)
	}
	uid := func(_ context.Context, ns, pod, ctr string) (string, error) {
		if ns == "ns" && pod == "pod" && (ctr == "echo" || ctr == "silent") {
			return "uid-1", nil
		}
		return "", fmt.Errorf("pod %s/%s: %w", ns, pod, errNotFound)
	}
	b.srv = httptest.NewTLSServer(newHandler(b.x, uid, dir, 5*time.Millisecond))
	t.Cleanup(b.srv.Close)
	return b
}

// appendAt appends s to the log and stamps it at time at.
func (b *bed) appendAt(s string, at time.Time) {
	b.t.Helper()
	f, err := os.OpenFile(b.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		b.t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(b.path, at, at); err != nil {
		b.t.Fatal(err)
	}
	b.x.scan()
}

func (b *bed) get(query string) (int, string) {
	b.t.Helper()
	resp, err := b.srv.Client().Get(b.srv.URL + "/containerLogs/ns/pod/echo?" + query)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestContainerLogs(t *testing.T) {
	b := newBed(t)
	b.appendAt("a1\na2\n", t0)
	b.appendAt("b1\nb2", t0.Add(10*time.Second))
	b.appendAt("-rest\nb3\n", t0.Add(20*time.Second)) // finishes a line begun in the chunk before

	since := func(d time.Duration) string { return "sinceTime=" + t0.Add(d).Format(time.RFC3339) }
	for _, c := range []struct{ query, want string }{
		{"", "a1\na2\nb1\nb2-rest\nb3\n"},
		{"tailLines=2", "b2-rest\nb3\n"},
		{"tailLines=0", ""},
		{"tailLines=99", "a1\na2\nb1\nb2-rest\nb3\n"},
		{since(5 * time.Second), "b1\nb2-rest\nb3\n"},
		{since(10 * time.Second), "b1\nb2-rest\nb3\n"},
		{since(15 * time.Second), "b3\n"}, // b2-rest began before
		{since(25 * time.Second), ""},
		{since(5*time.Second) + "&tailLines=4", "b1\nb2-rest\nb3\n"},
		{since(0) + "&tailLines=1", "b3\n"},
		{"limitBytes=4", "a1\na"},
		{"tailLines=2&timestamps=true", t0.Add(10*time.Second).Format(time.RFC3339Nano) + " b2-rest\n" +
			t0.Add(20*time.Second).Format(time.RFC3339Nano) + " b3\n"},
	} {
		code, got := b.get(c.query)
		if code != http.StatusOK || got != c.want {
			t.Errorf("?%s: %d %q, want 200 %q", c.query, code, got, c.want)
		}
	}
	for _, q := range []string{"previous=true", "stream=Stderr", "tailLines=x", "sinceTime=yesterday"} {
		if code, _ := b.get(q); code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, code)
		}
	}
}

func TestContainerLogsUnknown(t *testing.T) {
	b := newBed(t)
	for path, want := range map[string]int{
		"/containerLogs/ns/nopod/echo": http.StatusNotFound,
		"/containerLogs/ns/pod/silent": http.StatusOK, // a container that wrote no log
	} {
		resp, err := b.srv.Client().Get(b.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK && len(body) != 0) {
			t.Errorf("%s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
}

func TestContainerLogsFollow(t *testing.T) {
	b := newBed(t)
	b.appendAt("old\n", t0)
	go b.x.run(t.Context(), 5*time.Millisecond)
	resp, err := b.srv.Client().Get(b.srv.URL + "/containerLogs/ns/pod/echo?follow=true&tailLines=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	expect := func(want string) {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	expect("old\n")
	f, err := os.OpenFile(b.path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A line is sent only once it is complete.
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(" line\n"); err != nil {
		t.Fatal(err)
	}
	expect("new line\n")
	// Removing the pod's log (the pod is deleted) ends the stream.
	if err := os.RemoveAll(filepath.Dir(b.path)); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after removal: %q, %v; want EOF", rest, err)
	}
}

func TestTailStartLongFile(t *testing.T) {
	var sb strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&sb, "line %d\n", i)
	}
	r := strings.NewReader(sb.String())
	end := int64(sb.Len())
	off, err := tailStart(r, 3, end)
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.String()[off:]; got != "line 19997\nline 19998\nline 19999\n" {
		t.Fatalf("tail 3 = %q", got)
	}
	if off, _ := tailStart(r, 1e9, end); off != 0 {
		t.Fatalf("tail 1e9 starts at %d, want 0", off)
	}
	// A last line without its newline counts as a line.
	s := "x\ny\nz"
	if off, _ := tailStart(strings.NewReader(s), 2, int64(len(s))); s[off:] != "y\nz" {
		t.Fatalf("tail 2 of %q = %q", s, s[off:])
	}
}
