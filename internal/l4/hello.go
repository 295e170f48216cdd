package l4

import (
	"errors"
	"io"
)

// Every TLS connection's ClientHello is read before anything else: the
// records that carry it are read into a buffer, the server_name extension
// is parsed here to choose the route, and the buffer is then replayed
// unchanged, to the backend (passthrough) or to crypto/tls (terminate).

const (
	recordHeaderLen    = 5
	handshakeHeaderLen = 4
	recordHandshake    = 22
	typeClientHello    = 1
	extServerName      = 0
	// maxHelloLen bounds the ClientHello message (16 KiB, one full record
	// of data; real ones, post-quantum key shares included, are under 2 KiB).
	maxHelloLen = 16 << 10
	// maxRecords bounds the records a ClientHello may span.
	maxRecords = 64
	// maxPeek bounds the bytes read before the backend is chosen: the
	// message, its header and the headers of the records it spans.
	maxPeek = maxHelloLen + handshakeHeaderLen + maxRecords*recordHeaderLen
)

var (
	errNotTLS      = errors.New("not a TLS handshake")
	errNotHello    = errors.New("first handshake message is not a ClientHello")
	errHelloLong   = errors.New("ClientHello too large")
	errMalformed   = errors.New("malformed ClientHello")
	errBadHostName = errors.New("invalid server name")
	errShort       = errors.New("truncated") // more input is needed
)

// readHello reads from r until buf holds the complete ClientHello message
// (possibly spread over several records) and returns the bytes read and the
// server name it asks for ("" when it sends none). buf must have room for
// maxPeek bytes. The bytes read are exactly those that must be replayed to
// the backend.
func readHello(r io.Reader, buf []byte) (raw []byte, sni string, err error) {
	n := 0
	for {
		sni, need, err := parseClientHello(buf[:n])
		if err == nil {
			return buf[:n], sni, nil
		}
		if !errors.Is(err, errShort) {
			return buf[:n], "", err
		}
		if n+need > len(buf) {
			return buf[:n], "", errHelloLong
		}
		m, rerr := io.ReadAtLeast(r, buf[n:], need)
		n += m
		if rerr != nil {
			return buf[:n], "", rerr
		}
	}
}

// parseClientHello parses TLS records holding a ClientHello and returns its
// server name. With errShort, need is the least number of bytes to read
// before trying again. It never reads outside data.
func parseClientHello(data []byte) (sni string, need int, err error) {
	// Reassemble the handshake message from the records' fragments without
	// copying when it fits in the first record (the usual case).
	var msg []byte
	var frags [][]byte
	total := -1 // handshake message length with its header, once known
	have := 0
	p := data
	for {
		if len(p) < recordHeaderLen {
			return "", recordHeaderLen - len(p), errShort
		}
		if p[0] != recordHandshake {
			return "", 0, errNotTLS
		}
		if p[1] != 3 {
			return "", 0, errNotTLS
		}
		rl := int(p[3])<<8 | int(p[4])
		if rl == 0 || rl > maxHelloLen+handshakeHeaderLen {
			return "", 0, errMalformed
		}
		if len(p) < recordHeaderLen+rl {
			return "", recordHeaderLen + rl - len(p), errShort
		}
		frag := p[recordHeaderLen : recordHeaderLen+rl]
		p = p[recordHeaderLen+rl:]
		frags = append(frags, frag)
		have += len(frag)
		if total < 0 && have >= handshakeHeaderLen {
			hdr := joinPrefix(frags, handshakeHeaderLen)
			if hdr[0] != typeClientHello {
				return "", 0, errNotHello
			}
			ml := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if ml > maxHelloLen {
				return "", 0, errHelloLong
			}
			total = handshakeHeaderLen + ml
		}
		if total >= 0 && have >= total {
			break
		}
		if len(frags) >= maxRecords {
			return "", 0, errMalformed // a hello in many tiny records: refuse
		}
	}
	if len(frags) == 1 {
		msg = frags[0][:total]
	} else {
		msg = make([]byte, 0, have)
		for _, f := range frags {
			msg = append(msg, f...)
		}
		msg = msg[:total]
	}
	sni, err = helloServerName(msg[handshakeHeaderLen:])
	return sni, 0, err
}

// joinPrefix returns the first n bytes of the concatenated fragments
// (which hold at least n).
func joinPrefix(frags [][]byte, n int) []byte {
	if len(frags[0]) >= n {
		return frags[0][:n]
	}
	out := make([]byte, 0, n)
	for _, f := range frags {
		out = append(out, f...)
		if len(out) >= n {
			break
		}
	}
	return out[:n]
}

// reader reads big-endian fields from a byte slice; any read beyond its
// end sets bad and yields zero values.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(b[0])<<8 | int(b[1])
}

// helloServerName finds the host_name of the server_name extension
// (RFC 6066 section 3) in a ClientHello body.
func helloServerName(body []byte) (string, error) {
	r := &reader{b: body}
	r.bytes(2 + 32) // legacy_version, random
	r.bytes(r.u8()) // legacy_session_id
	cs := r.u16()   // cipher_suites
	if cs < 2 || cs%2 != 0 {
		return "", errMalformed
	}
	r.bytes(cs)
	cm := r.u8() // legacy_compression_methods: at least "null"
	r.bytes(cm)
	if r.bad || cm < 1 {
		return "", errMalformed
	}
	if len(r.b) == 0 {
		return "", nil // no extensions: no server name
	}
	exts := &reader{b: r.bytes(r.u16())}
	if r.bad {
		return "", errMalformed
	}
	for len(exts.b) > 0 {
		typ := exts.u16()
		data := exts.bytes(exts.u16())
		if exts.bad {
			return "", errMalformed
		}
		if typ != extServerName {
			continue
		}
		list := &reader{b: data}
		names := &reader{b: list.bytes(list.u16())}
		if list.bad || len(list.b) != 0 {
			return "", errMalformed
		}
		for len(names.b) > 0 {
			nt := names.u8()
			name := names.bytes(names.u16())
			if names.bad {
				return "", errMalformed
			}
			if nt == 0 { // host_name
				return hostName(name)
			}
		}
		return "", nil
	}
	return "", nil
}

// hostName validates a server name: letters, digits, '-', '_' and dots,
// at most 253 bytes without a trailing dot. It is returned lower-cased.
func hostName(b []byte) (string, error) {
	if len(b) > 0 && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 253 {
		return "", errBadHostName
	}
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			return "", errBadHostName
		}
		out[i] = c
	}
	return string(out), nil
}
