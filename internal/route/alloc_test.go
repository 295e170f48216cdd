package route

import (
	"fmt"
	"net/http"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

func TestMatchDoesNotAllocate(t *testing.T) {
	var hosts []*ir.VirtualHost
	for h := 0; h < 5; h++ {
		v := vh(fmt.Sprintf("h%d.example.com", h))
		for i := 0; i < 20; i++ {
			v.Routes = append(v.Routes,
				rt(fmt.Sprintf("h%d-hdr-%d", h, i), ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: fmt.Sprintf("/svc%d/api", i)}, Method: "GET",
					Headers: []ir.StringMatch{{Name: "X-Version", Value: "v2"}, {Name: "Accept", Value: "a,b"}, {Name: "X-Id", Type: ir.MatchRegex, Value: "[0-9]+"}},
					Query:   []ir.StringMatch{{Name: "q", Value: "x y"}, {Name: "n", Type: ir.MatchRegex, Value: "[0-9]+"}}}),
				rt(fmt.Sprintf("h%d-exact-%d", h, i), exact(fmt.Sprintf("/svc%d/health", i))),
				rt(fmt.Sprintf("h%d-prefix-%d", h, i), prefix(fmt.Sprintf("/svc%d", i))),
			)
		}
		v.Routes = append(v.Routes, rt(fmt.Sprintf("h%d-re", h), regex("/re/[a-z]+")))
		hosts = append(hosts, v)
	}
	hosts = append(hosts, vh("*.wild.example.com", rt("wild", prefix("/w"))))
	tab := mustCompile(t, hosts...)

	hdr := http.Header{"X-Version": {"v2"}, "Accept": {"a", "b"}, "X-Id": {"42"}}
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"header and query hit", Request{Host: "H3.Example.com:443", Path: "/svc7/api/x", Method: "GET", Header: hdr, RawQuery: "n=12&q=x%20y"}, "h3-hdr-7"},
		{"header hit, query miss falls to prefix", Request{Host: "h3.example.com", Path: "/svc7/api/x", Method: "GET", Header: hdr, RawQuery: "n=1x&q=x+y"}, "h3-prefix-7"},
		{"exact", Request{Host: "h1.example.com", Path: "/svc3/health", Header: hdr}, "h1-exact-3"},
		{"regex", Request{Host: "h1.example.com", Path: "/re/abc", Header: hdr}, "h1-re"},
		{"wildcard", Request{Host: "A.B.WILD.example.com.", Path: "/w/1"}, "wild"},
		{"path miss", Request{Host: "h1.example.com", Path: "/nope/x/y", Method: "GET", Header: hdr, RawQuery: "q=x+y"}, ""},
		{"host miss", Request{Host: "other.example.com", Path: "/svc1"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := tab.Match(&c.req)
			if got != c.want || ok != (c.want != "") {
				t.Fatalf("Match = %q, %v; want %q", got, ok, c.want)
			}
			if a := testing.AllocsPerRun(200, func() { tab.Match(&c.req) }); a != 0 {
				t.Errorf("Match allocates %v times per run, want 0", a)
			}
		})
	}
}
