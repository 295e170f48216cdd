package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// gate is a backend that answers with its name once released; started
// reports each request as it arrives.
type gate struct {
	release chan struct{}
	started chan struct{}
}

func newGate(t *testing.T, name string) (*gate, string) {
	g := &gate{release: make(chan struct{}), started: make(chan struct{}, 16)}
	s := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		g.started <- struct{}{}
		<-g.release
		io.WriteString(w, name)
	})
	return g, s.URL
}

func TestApplySwapsAtomically(t *testing.T) {
	ga, urlA := newGate(t, "A")
	b := textBackend(t, "B")
	e := newEnv(t, Options{})
	if e.p.Ready() {
		t.Fatal("ready before Apply")
	}
	cfgA := config([]*ir.Route{prefixRoute("r", "/", backend("a", 1))}, cluster("a", urlA))
	e.apply(cfgA)
	if !e.p.Ready() || e.p.Config() != cfgA {
		t.Fatal("config A not reported")
	}
	c := client(t)
	type result struct {
		code int
		body string
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := c.Get(e.url("main") + "/slow")
		if err != nil {
			slow <- result{0, err.Error()}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{resp.StatusCode, string(body)}
	}()
	<-ga.started

	// B no longer has cluster a at all.
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("b", 1))}, cluster("b", b.URL)))
	if code, body, _ := get(t, c, "GET", e.url("main")+"/new", nil); code != 200 || body != "B" {
		t.Errorf("new request: %d %q, want B", code, body)
	}
	close(ga.release)
	if r := <-slow; r.code != 200 || r.body != "A" {
		t.Errorf("in-flight request: %d %q, want A", r.code, r.body)
	}
}

func TestApplyRefusesBadConfig(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{})
	good := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	e.apply(good)
	addr := e.p.Addr("main").String()

	badRegex := config([]*ir.Route{{
		Name:     "httproute/default/bad/rule/0/match/0",
		Match:    ir.Match{Path: ir.PathMatch{Type: ir.PathRegex, Value: "/(unclosed"}},
		Backends: []*ir.Backend{backend("be", 1)},
	}}, cluster("be", be.URL))
	unknownCluster := config([]*ir.Route{prefixRoute("httproute/default/ghost", "/", backend("ghost", 1))}, cluster("be", be.URL))
	badCert := tlsConfig(be.URL, &ir.Certificate{CertPEM: []byte("junk"), KeyPEM: []byte("junk"), Origin: "Secret/default/junk"})
	// Bound to the same port in a different listener name: it would be a
	// bind failure, but the compile error must win before any socket.
	for name, cfg := range map[string]*ir.Config{"regex": badRegex, "cluster": unknownCluster, "cert": badCert} {
		err := e.p.Apply(cfg)
		if err == nil {
			t.Fatalf("%s: bad config accepted", name)
		}
		if !strings.Contains(err.Error(), "listener") {
			t.Errorf("%s: error does not name the listener: %v", name, err)
		}
		if name == "regex" && !strings.Contains(err.Error(), "httproute/default/bad") {
			t.Errorf("error does not name the route: %v", err)
		}
	}
	if e.p.Config() != good || e.p.Addr("main").String() != addr || e.p.Addr("tls") != nil {
		t.Error("a refused config changed the proxy")
	}
	if code, body, _ := get(t, client(t), "GET", e.url("main")+"/", nil); code != 200 || body != "ok" {
		t.Errorf("old config no longer serves: %d %q", code, body)
	}
}

func TestListenersAddedAndRemoved(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{})
	one := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	e.apply(one)
	first := e.p.Addr("main").String()

	two := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	second := *two.Listeners[0]
	second.Name = "second"
	two.Listeners = append(two.Listeners, &second)
	e.apply(two)
	if e.p.Addr("main").String() != first {
		t.Error("kept listener was rebound")
	}
	c := client(t)
	for _, l := range []string{"main", "second"} {
		if code, _, _ := get(t, c, "GET", e.url(l)+"/", nil); code != 200 {
			t.Errorf("%s: %d", l, code)
		}
	}

	// Remove "main": it stops accepting.
	only := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	only.Listeners[0] = &second
	e.apply(only)
	if e.p.Addr("main") != nil {
		t.Error("removed listener still reported")
	}
	waitRefused(t, first)
	if code, _, _ := get(t, c, "GET", e.url("second")+"/", nil); code != 200 {
		t.Errorf("second after removal: %d", code)
	}
}

// waitRefused waits until nothing accepts at addr.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBindError(t *testing.T) {
	be := textBackend(t, "ok")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	cfg := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	busy := *cfg.Listeners[0]
	busy.Name, busy.Port = "busy", port
	cfg.Listeners = append(cfg.Listeners, &busy)
	e := newEnv(t, Options{})
	err = e.p.Apply(cfg)
	var be2 *BindError
	if !errors.As(err, &be2) || be2.Failed["busy"] == nil || len(be2.Failed) != 1 {
		t.Fatalf("want a BindError for busy, got %v", err)
	}
	if !e.p.Ready() {
		t.Error("rest of the config not applied")
	}
	if code, _, _ := get(t, client(t), "GET", e.url("main")+"/", nil); code != 200 {
		t.Errorf("main: %d", code)
	}
}

func TestShutdownDrains(t *testing.T) {
	g, url := newGate(t, "done")
	up := newEnv(t, Options{}) // owns the manager cleanup; its proxy stays empty
	p := New(Options{Upstreams: up.up, Logger: up.p.opts.Logger})
	if err := p.Apply(config([]*ir.Route{prefixRoute("r", "/", backend("g", 1))}, cluster("g", url))); err != nil {
		t.Fatal(err)
	}
	addr := p.Addr("main").String()
	c := client(t)
	res := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- string(b)
	}()
	<-g.started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	waitRefused(t, addr)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned before the request finished: %v", err)
	default:
	}
	close(g.release)
	if body := <-res; body != "done" {
		t.Errorf("in-flight request got %q", body)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := p.Apply(config(nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Shutdown: %v", err)
	}
}

func TestShutdownCutsAtDeadline(t *testing.T) {
	g, url := newGate(t, "late")
	defer close(g.release)
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("g", 1))}, cluster("g", url)))
	c := client(t)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Get(e.url("main") + "/")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	<-g.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want deadline exceeded", err)
	}
	if err := <-errc; err == nil {
		t.Error("request cut by Shutdown succeeded")
	}
}
