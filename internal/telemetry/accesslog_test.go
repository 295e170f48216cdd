package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the log's flusher writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type line struct {
	Time               string  `json:"time"`
	Method             string  `json:"method"`
	Authority          string  `json:"authority"`
	Path               string  `json:"path"`
	Protocol           string  `json:"protocol"`
	Status             int     `json:"status"`
	DurationMS         float64 `json:"duration_ms"`
	UpstreamDurationMS float64 `json:"upstream_duration_ms"`
	BytesIn            int64   `json:"bytes_in"`
	BytesOut           int64   `json:"bytes_out"`
	Upstream           string  `json:"upstream"`
	Flags              string  `json:"flags"`
	RequestID          string  `json:"request_id"`
	Route              string  `json:"route"`
	Gateway            string  `json:"gateway"`
}

func sampleEntry() *Entry {
	return &Entry{
		Time:             time.Date(2026, 11, 22, 3, 4, 5, 123456789, time.UTC),
		Method:           "GET",
		Authority:        "app.example.com",
		Path:             "/v1/items?q=1",
		Protocol:         "HTTP/1.1",
		Status:           503,
		Duration:         12345 * time.Microsecond,
		UpstreamDuration: 1500 * time.Microsecond,
		BytesIn:          10,
		BytesOut:         2048,
		Upstream:         "10.0.0.1:8080",
		Flags:            FlagUpstreamConnectFailure + "," + FlagUpstreamTimeout,
		RequestID:        "abc-123",
		Route:            "httproute/default/app/rule/0/match/0",
		Gateway:          "default/gw",
	}
}

func TestAccessLogLine(t *testing.T) {
	var buf syncBuffer
	l := NewAccessLog(&buf)
	l.Log(sampleEntry())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasSuffix(out, "}\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line, got %q", out)
	}
	var got line
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	want := line{
		Time: "2026-11-22T03:04:05.123456789Z", Method: "GET", Authority: "app.example.com",
		Path: "/v1/items?q=1", Protocol: "HTTP/1.1", Status: 503, DurationMS: 12.345,
		UpstreamDurationMS: 1.5, BytesIn: 10, BytesOut: 2048, Upstream: "10.0.0.1:8080",
		Flags: "UF,UT", RequestID: "abc-123", Route: "httproute/default/app/rule/0/match/0",
		Gateway: "default/gw",
	}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Key order is part of the format: people grep and diff these lines.
	keys := []string{"time", "method", "authority", "path", "protocol", "status", "duration_ms",
		"upstream_duration_ms", "bytes_in", "bytes_out", "upstream", "flags", "request_id", "route", "gateway"}
	pos := -1
	for _, k := range keys {
		i := strings.Index(out, `"`+k+`":`)
		if i <= pos {
			t.Errorf("key %q out of order in %s", k, out)
		}
		pos = i
	}
}

func TestAccessLogFlushesPeriodically(t *testing.T) {
	var buf syncBuffer
	l := NewAccessLog(&buf)
	defer l.Close()
	l.Log(sampleEntry())
	// The flusher runs every 100 ms; allow a generous deadline on a busy
	// machine, polling rather than sleeping a fixed time.
	deadline := time.Now().Add(5 * time.Second)
	for buf.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("line not flushed without Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAccessLogConcurrent(t *testing.T) {
	var buf syncBuffer
	l := NewAccessLog(&buf)
	const workers, per = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := sampleEntry()
			e.Path = strings.Repeat("/p", w*40) // lines of different lengths
			for range per {
				l.Log(e)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %q", n, sc.Text())
		}
		n++
	}
	if n != workers*per {
		t.Errorf("%d lines, want %d", n, workers*per)
	}
}

func TestAccessLogNilAndClosed(t *testing.T) {
	var l *AccessLog
	l.Log(sampleEntry()) // must not panic
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	l = NewAccessLog(&buf)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Log(sampleEntry())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "" {
		t.Errorf("logged after Close: %q", buf.String())
	}
}

type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestAccessLogWriteError(t *testing.T) {
	l := NewAccessLog(failWriter{})
	l.Log(sampleEntry())
	if err := l.Close(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Close = %v, want %v", err, errDiskFull)
	}
}

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":                 `""`,
		"plain":            `"plain"`,
		`q"b\`:             `"q\"b\\"`,
		"a\nb\r\tc":        `"a\nb\r\tc"`,
		"\x00\x1f":         `"\u0000\u001f"`,
		"é→😀":              `"é→😀"`,
		"a\xffb":           `"a\ufffdb"`,
		"\xe2\x82":         `"\ufffd\ufffd"`, // truncated rune: one U+FFFD per byte
		"<script>&":        `"<script>&"`,
		"\u2028\u2029\x7f": "\"\u2028\u2029\x7f\"",
	} {
		if got := string(appendString(nil, in)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzAccessLogEntry(f *testing.F) {
	f.Add("GET", "a.example.com", "/x?y=\"z\"", "HTTP/2.0", 200, int64(1500000), "10.0.0.1:80", "UF,DC", "id\x00", "r\xff", "ns/\u2028gw")
	f.Add("", "", "", "", 0, int64(0), "", "", "", "", "")
	f.Fuzz(func(t *testing.T, method, authority, path, proto string, status int, dur int64, upstream, flags, reqID, route, gateway string) {
		e := &Entry{
			Time: time.Unix(0, dur).UTC(), Method: method, Authority: authority, Path: path, Protocol: proto,
			Status: status, Duration: time.Duration(dur), UpstreamDuration: time.Duration(dur / 2),
			BytesIn: dur, BytesOut: -dur, Upstream: upstream, Flags: flags, RequestID: reqID, Route: route, Gateway: gateway,
		}
		b := appendEntry(nil, e)
		if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
			t.Fatalf("not one line: %q", b)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %q", b)
		}
		var got line
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal %q: %v", b, err)
		}
		// Valid UTF-8 comes back unchanged; each invalid byte as U+FFFD.
		valid := func(s string) string { return string([]rune(s)) }
		for _, c := range []struct{ got, in string }{
			{got.Method, method}, {got.Authority, authority}, {got.Path, path}, {got.Protocol, proto},
			{got.Upstream, upstream}, {got.Flags, flags}, {got.RequestID, reqID}, {got.Route, route}, {got.Gateway, gateway},
		} {
			if c.got != valid(c.in) {
				t.Errorf("round trip of %q gave %q", c.in, c.got)
			}
		}
		if got.Status != status || got.BytesIn != dur || got.BytesOut != -dur {
			t.Errorf("numbers changed: %+v", got)
		}
		if _, err := time.Parse(time.RFC3339Nano, got.Time); err != nil && e.Time.Year() < 10000 {
			t.Errorf("time %q: %v", got.Time, err)
		}
	})
}

func BenchmarkAccessLog(b *testing.B) {
	l := NewAccessLog(io.Discard)
	defer l.Close()
	e := sampleEntry()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Log(e)
		}
	})
}
