package l4

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
)

// clientHello returns the bytes crypto/tls sends first for serverName.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""})
		_ = c.Handshake()
	}()
	defer a.Close()
	defer b.Close()
	raw, sni, err := readHello(b, make([]byte, maxPeek))
	if err != nil {
		t.Fatalf("reading a real ClientHello: %v", err)
	}
	if sni != serverName {
		t.Fatalf("SNI %q, want %q", sni, serverName)
	}
	return append([]byte(nil), raw...)
}

// fragment re-splits the handshake message of a one-record hello into
// records of at most size bytes.
func fragment(hello []byte, size int) []byte {
	msg := hello[recordHeaderLen:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func TestParseClientHello(t *testing.T) {
	hello := clientHello(t, "db.example.com")
	for _, tc := range []struct {
		name string
		in   []byte
		sni  string
		err  error
	}{
		{"one record", hello, "db.example.com", nil},
		{"fragmented", fragment(hello, 100), "db.example.com", nil},
		{"header split", fragment(hello, 3)[:20], "", errShort},
		{"too many records", fragment(hello, 2), "", errMalformed},
		{"no SNI", clientHello(t, ""), "", nil},
		{"not TLS", []byte("GET / HTTP/1.1\r\n"), "", errNotTLS},
		{"not a hello", []byte{22, 3, 1, 0, 4, 2, 0, 0, 0}, "", errNotHello},
		{"too long", []byte{22, 3, 1, 0, 4, 1, 1, 0, 0}, "", errHelloLong},
		{"truncated body", []byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}, "", errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sni, _, err := parseClientHello(tc.in)
			if !errors.Is(err, tc.err) || sni != tc.sni {
				t.Fatalf("got %q, %v; want %q, %v", sni, err, tc.sni, tc.err)
			}
		})
	}
	// Every proper prefix asks for more.
	for i := range len(hello) {
		if _, need, err := parseClientHello(hello[:i]); !errors.Is(err, errShort) || need < 1 {
			t.Fatalf("prefix %d: need %d, %v", i, need, err)
		}
	}
}

// TestReadHelloKeepsBytes: the bytes returned are exactly those read, so
// the backend gets the handshake unchanged (early bytes after the hello
// included).
func TestReadHelloKeepsBytes(t *testing.T) {
	hello := clientHello(t, "a.test")
	in := append(fragment(hello, 100), "early"...)
	raw, sni, err := readHello(bytes.NewReader(in), make([]byte, maxPeek))
	if err != nil || sni != "a.test" {
		t.Fatalf("%q, %v", sni, err)
	}
	if !bytes.HasPrefix(in, raw) || len(raw) < len(in)-len("early") {
		t.Fatalf("read %d bytes, not a prefix covering the hello of %d", len(raw), len(in))
	}
}

func FuzzParseClientHello(f *testing.F) {
	hello := clientHello(f, "fuzz.example.com")
	f.Add(hello)
	f.Add(fragment(hello, 50))
	f.Add(clientHello(f, ""))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// The parser must not read outside data: give it an exact-size
		// copy so that any overrun panics.
		in := append([]byte(nil), data...)
		sni, need, err := parseClientHello(in[:len(in):len(in)])
		switch {
		case err == nil:
			if sni != "" {
				if _, herr := hostName([]byte(sni)); herr != nil {
					t.Fatalf("accepted invalid name %q", sni)
				}
			}
		case errors.Is(err, errShort):
			if need < 1 || need > maxPeek {
				t.Fatalf("need %d", need)
			}
		}
		if !bytes.Equal(in, data) {
			t.Fatal("input modified")
		}
	})
}
