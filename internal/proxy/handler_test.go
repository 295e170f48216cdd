package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func TestKeepAliveAndRouting(t *testing.T) {
	a := textBackend(t, "A")
	b := textBackend(t, "B")
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{
		prefixRoute("r-b", "/b", backend("b", 1)),
		prefixRoute("r-a", "/", backend("a", 1)),
	}, cluster("a", a.URL), cluster("b", b.URL)))

	// Several requests on one client connection.
	c, err := net.Dial("tcp", e.p.Addr("main").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, tc := range []struct{ path, want string }{{"/x", "A"}, {"/b/c", "B"}, {"/bb", "A"}, {"/b", "B"}} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n", tc.path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != tc.want {
			t.Errorf("%s: got %d %q, want 200 %q", tc.path, resp.StatusCode, body, tc.want)
		}
	}
}

func TestLocalAnswers(t *testing.T) {
	e := newEnv(t, Options{})
	// A listener on a port nobody listens on: take a free port and close it.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := l.Addr().String()
	l.Close()
	e.apply(config([]*ir.Route{
		prefixRoute("invalid", "/invalid", &ir.Backend{Cluster: "", Weight: 1, Name: "missing"}),
		prefixRoute("zero", "/zero", backend("refused", 0)),
		prefixRoute("refused", "/refused", backend("refused", 1)),
		prefixRoute("empty", "/empty", backend("empty", 1)),
		{Name: "exact", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathExact, Value: "/only"}}, Backends: []*ir.Backend{backend("refused", 1)}},
	}, cluster("refused", refused), cluster("empty")))
	c := client(t)
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/invalid", 500, "invalid backend\n"},
		{"/zero", 500, "invalid backend\n"},
		{"/refused", 503, "upstream connect error\n"},
		{"/empty", 503, "no healthy upstream\n"},
		{"/nothing", 404, "no matching route\n"},
	} {
		code, body, _ := get(t, c, "GET", e.url("main")+tc.path, nil)
		if code != tc.code || body != tc.body {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	// A path with a control character cannot be sent by net/http's client.
	conn, err := net.Dial("tcp", e.p.Addr("main").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /a%%00b HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("bad path: got %d, want 400", resp.StatusCode)
	}
}

func TestForwardedHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		hosts <- r.Host
	})
	for _, hops := range []int{0, 1} {
		t.Run(fmt.Sprint("hops", hops), func(t *testing.T) {
			e := newEnv(t, Options{TrustedHops: hops})
			e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
			c := client(t)
			// Without client values.
			get(t, c, "GET", e.url("main")+"/", map[string]string{"Host": "app.example.com"})
			h := <-got
			if host := <-hosts; host != "app.example.com" {
				t.Errorf("Host = %q, want app.example.com", host)
			}
			if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != "app.example.com" {
				t.Errorf("forwarded headers: %v", h)
			}
			uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
			if id := h.Get("X-Request-Id"); !uuid.MatchString(id) {
				t.Errorf("generated request id %q is not a UUIDv4", id)
			}

			// With client values, and hop-by-hop fields.
			get(t, c, "GET", e.url("main")+"/", map[string]string{
				"Host":              "app.example.com",
				"X-Forwarded-For":   "10.0.0.1",
				"X-Forwarded-Proto": "https",
				"X-Forwarded-Host":  "front.example.com",
				"X-Request-Id":      "client-id",
				"Connection":        "x-secret, keep-alive",
				"X-Secret":          "s",
				"Keep-Alive":        "timeout=5",
				"Te":                "trailers, deflate",
				"Proxy-Connection":  "keep-alive",
				"Upgrade":           "foo",
			})
			h = <-got
			<-hosts
			if v := h.Get("X-Forwarded-For"); v != "10.0.0.1, 127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q", v)
			}
			wantProto, wantHost := "http", "app.example.com"
			if hops > 0 {
				wantProto, wantHost = "https", "front.example.com"
			}
			if v := h.Get("X-Forwarded-Proto"); v != wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", v, wantProto)
			}
			if v := h.Get("X-Forwarded-Host"); v != wantHost {
				t.Errorf("X-Forwarded-Host = %q, want %q", v, wantHost)
			}
			id := h.Get("X-Request-Id")
			if hops > 0 && id != "client-id" || hops == 0 && (id == "client-id" || id == "") {
				t.Errorf("X-Request-Id = %q with %d trusted hops", id, hops)
			}
			for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
				if v, ok := h[k]; ok {
					t.Errorf("hop-by-hop %s reached the backend: %q", k, v)
				}
			}
			if v := h.Get("Te"); v != "trailers" {
				t.Errorf("TE = %q, want trailers", v)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	type seen struct {
		host, uri string
		hdr       http.Header
	}
	got := make(chan seen, 1)
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.RequestURI, r.Header.Clone()}
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-Keep", "1")
	})
	newHost := "internal.local"
	r := prefixRoute("r", "/api", &ir.Backend{
		Cluster: "be", Weight: 1, Name: "be",
		RequestHeaders:  &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Backend", Value: "b"}}},
		ResponseHeaders: &ir.HeaderModifier{Add: []ir.Header{{Name: "X-Backend-Resp", Value: "b"}}},
	})
	r.RequestHeaders = &ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Route", Value: "r"}},
		Add:    []ir.Header{{Name: "X-Added", Value: "1"}},
		Remove: []string{"X-Drop"},
	}
	r.ResponseHeaders = &ir.HeaderModifier{Remove: []string{"X-Internal"}, Set: []ir.Header{{Name: "X-Route-Resp", Value: "r"}}}
	r.Rewrite = &ir.Rewrite{Hostname: &newHost, Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/v2"}}
	code301 := 301
	https := "https"
	redir := &ir.Route{
		Name:     "redir",
		Match:    ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/old"}},
		Redirect: &ir.Redirect{Scheme: &https, StatusCode: code301},
	}
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{redir, r}, cluster("be", be.URL)))
	c := client(t)

	code, _, resp := get(t, c, "GET", e.url("main")+"/api/users?x=1", map[string]string{"X-Drop": "d", "X-Added": "0", "Host": "shop.example.com"})
	s := <-got
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if s.host != newHost || s.uri != "/v2/users?x=1" {
		t.Errorf("rewrite: host %q uri %q", s.host, s.uri)
	}
	if s.hdr.Get("X-Route") != "r" || s.hdr.Get("X-Backend") != "b" || len(s.hdr["X-Added"]) != 2 || s.hdr.Get("X-Drop") != "" {
		t.Errorf("request headers: %v", s.hdr)
	}
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-Keep") != "1" ||
		resp.Header.Get("X-Route-Resp") != "r" || resp.Header.Get("X-Backend-Resp") != "b" {
		t.Errorf("response headers: %v", resp.Header)
	}

	code, _, resp = get(t, c, "GET", e.url("main")+"/old/page", map[string]string{"Host": "shop.example.com"})
	if code != 301 || resp.Header.Get("Location") != "https://shop.example.com/old/page" {
		t.Errorf("redirect: %d %q", code, resp.Header.Get("Location"))
	}
}

func TestPathNormalisedUpstream(t *testing.T) {
	got := make(chan string, 1)
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) { got <- r.RequestURI })
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/a", backend("be", 1))}, cluster("be", be.URL)))
	conn, err := net.Dial("tcp", e.p.Addr("main").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /x/../a//b/%%7e?q HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if uri := <-got; uri != "/a/b/~?q" {
		t.Errorf("upstream saw %q, want /a/b/~?q", uri)
	}
}

func TestWeights(t *testing.T) {
	var hits [3]atomic.Int32
	bes := make([]string, 3)
	for i := range bes {
		bes[i] = backendServer(t, func(w http.ResponseWriter, r *http.Request) { hits[i].Add(1) }).URL
	}
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("a", 3), backend("b", 1), backend("c", 0))},
		cluster("a", bes[0]), cluster("b", bes[1]), cluster("c", bes[2])))
	c := client(t)
	const n = 1000
	for range n {
		if code, _, _ := get(t, c, "GET", e.url("main")+"/", nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	a, b := hits[0].Load(), hits[1].Load()
	// Binomial(1000, 0.75): sd ~13.7; 6 sd either way never flakes.
	if a < 750-82 || a > 750+82 || a+b != n {
		t.Errorf("3:1 split gave %d:%d", a, b)
	}
	if hits[2].Load() != 0 {
		t.Errorf("weight 0 backend got %d requests", hits[2].Load())
	}
}

func TestInvalidBackendShare(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1), &ir.Backend{Cluster: "", Weight: 1, Name: "bad"})}, cluster("be", be.URL)))
	c := client(t)
	counts := map[int]int{}
	for range 200 {
		code, _, _ := get(t, c, "GET", e.url("main")+"/", nil)
		counts[code]++
	}
	if counts[200] < 50 || counts[500] < 50 || counts[200]+counts[500] != 200 {
		t.Errorf("1:1 split with an invalid backend gave %v", counts)
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	streaming := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for range 3 {
			time.Sleep(100 * time.Millisecond)
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
		}
	})
	req := prefixRoute("req", "/request", backend("slow", 1))
	req.Timeouts.Request = ir.Duration(100 * time.Millisecond)
	bereq := prefixRoute("be", "/backend", backend("slow", 1))
	bereq.Timeouts.BackendRequest = ir.Duration(100 * time.Millisecond)
	stream := prefixRoute("stream", "/stream", backend("streaming", 1))
	stream.Timeouts.Request = ir.Duration(150 * time.Millisecond)
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{req, bereq, stream}, cluster("slow", slow.URL), cluster("streaming", streaming.URL)))
	c := client(t)
	for _, p := range []string{"/request", "/backend"} {
		code, body, _ := get(t, c, "GET", e.url("main")+p, nil)
		if code != 504 || body != "upstream request timeout\n" {
			t.Errorf("%s: got %d %q, want 504", p, code, body)
		}
	}
	// The timeout ends at the response headers: a body streaming longer
	// than it still arrives whole.
	code, body, _ := get(t, c, "GET", e.url("main")+"/stream", nil)
	if code != 200 || body != "xxx" {
		t.Errorf("stream: got %d %q, want 200 xxx", code, body)
	}
}

func TestBodyLimit(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{MaxBodyBytes: 1000})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	c := client(t)
	// Known length over the limit.
	resp, err := c.Post(e.url("main")+"/", "text/plain", strings.NewReader(strings.Repeat("a", 1001)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("known length: %d, want 413", resp.StatusCode)
	}
	// Chunked over the limit.
	resp, err = c.Post(e.url("main")+"/", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("a", 2000))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked: %d, want 413", resp.StatusCode)
	}
	// Within the limit.
	resp, err = c.Post(e.url("main")+"/", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("a", 1000))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("within: %d, want 200", resp.StatusCode)
	}
}

func TestMirror(t *testing.T) {
	type copyOf struct {
		host, uri, body string
	}
	mirrored := make(chan copyOf, 4)
	mirror := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mirrored <- copyOf{r.Host, r.RequestURI, string(b)}
		w.WriteHeader(500) // must not matter
	})
	main := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "main:"+string(b))
	})
	r := prefixRoute("r", "/", backend("main", 1))
	r.Mirrors = []*ir.Mirror{{Cluster: "mirror"}}
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{r}, cluster("main", main.URL), cluster("mirror", mirror.URL)))
	c := client(t)

	code, body, _ := get(t, c, "GET", e.url("main")+"/m?q=1", map[string]string{"Host": "h.example"})
	if code != 200 || body != "main:" {
		t.Errorf("main answer: %d %q", code, body)
	}
	if m := <-mirrored; m.host != "h.example" || m.uri != "/m?q=1" || m.body != "" {
		t.Errorf("mirror saw %+v", m)
	}

	resp, err := c.Post(e.url("main")+"/post", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "main:payload" {
		t.Errorf("main answer %q", b)
	}
	if m := <-mirrored; m.uri != "/post" || m.body != "payload" {
		t.Errorf("mirror saw %+v", m)
	}

	// A body over the mirror limit is not mirrored but forwarded whole.
	big := strings.Repeat("b", maxMirrorBody+1)
	before := e.p.MirrorsDropped()
	resp, err = c.Post(e.url("main")+"/big", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "main:"+big {
		t.Errorf("big body: main answered %d bytes", len(b))
	}
	if e.p.MirrorsDropped() != before+1 {
		t.Errorf("dropped mirrors %d, want %d", e.p.MirrorsDropped(), before+1)
	}
	select {
	case m := <-mirrored:
		t.Errorf("big body mirrored: %s", m.uri)
	default:
	}
}
