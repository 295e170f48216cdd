package h1

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// h2specModule is the conformance tester run by TestH2Spec, installed
// through the module proxy when it is not on PATH or in GOPATH/bin.
const h2specModule = "github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

// h2specSkip lists the h2spec cases that do not apply to this edge, by
// mode ("h2c", "tls" or "*") and case id, each with the reason.
var h2specSkip = map[string]string{
	// The case sends "INVALID CONNECTION PREFACE\r\n\r\n" and wants the
	// connection closed. On a port serving HTTP/1.1 and h2c with prior
	// knowledge (RFC 9113 §3.3) those bytes are an HTTP/1.1 request with
	// an invalid request-line, which RFC 9112 §3 answers with 400. A
	// connection that starts with "PRI * HTTP/2.0" and then breaks the
	// preface is closed unanswered (TestH2Malformed, "bad preface");
	// over TLS with ALPN h2 the case runs and passes.
	"h2c http2/3.5/2": "HTTP/1.1 shares the port (RFC 9113 §3.3, RFC 9112 §3)",
	// The case sends a HEADERS frame of about 20 KB, assuming the
	// default SETTINGS_MAX_FRAME_SIZE of 16384, but the server announces
	// 1 MiB (RFC 9113 §6.5.2: the largest payload "the sender is willing
	// to receive"), so the frame is within the limit and is answered.
	// Frames over the announced limit are connection errors
	// FRAME_SIZE_ERROR (TestH2Malformed, "oversized" cases, §4.2), as
	// h2spec's own http2/4.2/2 checks for DATA with the announced size.
	"* http2/4.2/3": "the server announces SETTINGS_MAX_FRAME_SIZE 1 MiB (RFC 9113 §4.2, §6.5.2)",
}

// TestH2Spec runs h2spec (RFC 9113 and RFC 7541 conformance) against an
// h1.Server handing h2c and TLS h2 connections to HTTP2, and fails on
// every failed case.
func TestH2Spec(t *testing.T) {
	bin := h2specBinary(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// At least 5 bytes, or h2spec skips http2/6.9.2/2.
		_, _ = io.WriteString(w, "causeway h2spec\n")
	})
	for _, mode := range []string{"h2c", "tls"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			addr := serveEdge(t, h, mode == "tls")
			_, port, _ := net.SplitHostPort(addr)
			report := filepath.Join(t.TempDir(), "report.xml")
			args := []string{"-S", "-h", "127.0.0.1", "-p", port, "-j", report, "-o", "5"}
			if mode == "tls" {
				args = append(args, "-t", "-k")
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			cases := parseJUnit(t, report)
			if len(cases) == 0 {
				t.Fatalf("h2spec ran no case (%v):\n%s", err, out)
			}
			failed, excluded := 0, 0
			for _, c := range cases {
				why, ok := h2specSkip[mode+" "+c.id]
				if !ok {
					why, ok = h2specSkip["* "+c.id]
				}
				switch {
				case ok:
					excluded++
					t.Logf("h2spec %s excluded (%s): %s", c.id, c.outcome(), why)
				case c.skipped:
					failed++
					t.Errorf("h2spec %s %s: skipped by h2spec", c.id, c.name)
				case c.failed != "":
					failed++
					t.Errorf("h2spec %s %s: %s", c.id, c.name, c.failed)
				}
			}
			t.Logf("h2spec %s: %d cases, %d failed, %d excluded", mode, len(cases), failed, excluded)
		})
	}
}

// serveEdge runs an h1.Server handing HTTP/2 to HTTP2 on a loopback
// listener, with TLS (ALPN h2) or plain (h2c prior knowledge).
func serveEdge(t testing.TB, h http.Handler, useTLS bool) string {
	t.Helper()
	h2 := NewHTTP2(&http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)})
	t.Cleanup(func() { _ = h2.Shutdown(context.Background()) })
	s := &Server{Handler: h, H2C: h2.ServeConn, H2: h2.ServeConn}
	if !useTLS {
		return serveH1(t, s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	ts.StartTLS() // only for its certificate
	ts.Close()
	tln := tls.NewListener(ln, &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(tln) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return ln.Addr().String()
}

// h2specBinary finds h2spec or installs it into a temporary GOBIN.
func h2specBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("h2spec"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			p := filepath.Join(dir, "bin", "h2spec")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	gobin := filepath.Join(os.TempDir(), "causeway-h2spec")
	p := filepath.Join(gobin, "h2spec")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	cmd := exec.Command("go", "install", h2specModule)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing h2spec: %v\n%s", err, out)
	}
	return p
}

// h2specCase is one test case of a JUnit report.
type h2specCase struct {
	id, name string
	failed   string // the failure message; "" when passed or skipped
	skipped  bool
}

func (c h2specCase) outcome() string {
	switch {
	case c.failed != "":
		return "failed"
	case c.skipped:
		return "skipped"
	}
	return "passed"
}

// parseJUnit reads h2spec's JUnit report: testsuites named by spec
// section ("http2/6.5.3"), testcases numbered within each.
func parseJUnit(t *testing.T, path string) []h2specCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				Name    string    `xml:"classname,attr"`
				Skipped *struct{} `xml:"skipped"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Text string `xml:",chardata"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	var out []h2specCase
	for _, s := range doc.Suites {
		for i, c := range s.Cases {
			hc := h2specCase{id: s.Package + "/" + strconv.Itoa(i+1), name: c.Name, skipped: c.Skipped != nil}
			switch {
			case c.Failure != nil:
				hc.failed = strings.TrimSpace(c.Failure.Text)
			case c.Error != nil:
				hc.failed = "error: " + strings.TrimSpace(c.Error.Text)
			}
			out = append(out, hc)
		}
	}
	return out
}
