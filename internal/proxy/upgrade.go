package proxy

import (
	"io"
	"net"
	"net/http"
)

// serveUpgrade completes a protocol upgrade the upstream accepted (101):
// it takes the client connection over from net/http, writes the 101
// downstream, then copies bytes both ways until either side closes.
func (ls *listener) serveUpgrade(w http.ResponseWriter, resp *http.Response, x *exchange) {
	p := ls.p
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		_ = resp.Body.Close()
		x.localReply(w, http.StatusBadGateway, "UC", "upstream upgrade failed\n")
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = up.Close()
		x.localReply(w, http.StatusInternalServerError, "", "upgrade not supported\n")
		return
	}
	x.status = resp.StatusCode
	p.trackUpgrade(conn, true)
	removeHopHeaders(resp.Header, true)
	x.entry.respHeaders.Apply(resp.Header)
	x.be.respHeaders.Apply(resp.Header)
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = resp.Header.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		x.flags = "DC"
		_ = up.Close()
		_ = conn.Close()
		p.trackUpgrade(conn, false)
		return
	}
	// Bytes the client sent after its request may sit in net/http's
	// buffer already.
	var client io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		client = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), conn)
	}
	in := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(up, client)
		_ = up.Close()
		_ = conn.Close()
		in <- n
	}()
	n, _ := io.Copy(conn, up)
	_ = conn.Close()
	_ = up.Close()
	x.bytesOut += n
	x.bytesIn += <-in
	p.trackUpgrade(conn, false)
}

// trackUpgrade records hijacked connections, which http.Server no longer
// sees, so that Shutdown can wait for them and close them.
func (p *Proxy) trackUpgrade(c net.Conn, add bool) {
	p.upMu.Lock()
	if add {
		p.upgrades[c] = struct{}{}
		p.active.Add(1)
	} else {
		delete(p.upgrades, c)
		p.active.Add(-1)
	}
	p.upMu.Unlock()
}

func (p *Proxy) closeUpgrades() {
	p.upMu.Lock()
	for c := range p.upgrades {
		_ = c.Close()
	}
	p.upMu.Unlock()
}
