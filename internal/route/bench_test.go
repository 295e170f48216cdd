package route

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// benchConfig spreads n routes over hosts of at most 100 routes each
// (10,000 routes are 100 hostnames): per host, distinct service prefixes,
// every 10th one restricted to a header, an exact health path each, and a
// catch-all last.
func benchConfig(n, perHost int) (vhosts []*ir.VirtualHost, reqs []*Request) {
	rng := rand.New(rand.NewPCG(1, 2))
	for h := 0; h*perHost < n; h++ {
		v := &ir.VirtualHost{Domain: fmt.Sprintf("app%d.example.com", h)}
		count := min(perHost, n-h*perHost)
		for i := 0; i < count-1; i++ {
			m := ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: fmt.Sprintf("/svc%d/v1", i)}}
			switch {
			case i%10 == 0:
				m.Headers = []ir.StringMatch{{Name: "X-Canary", Value: "true"}}
			case i%10 == 5:
				m.Path = ir.PathMatch{Type: ir.PathExact, Value: fmt.Sprintf("/svc%d/health", i)}
			}
			v.Routes = append(v.Routes, &ir.Route{Name: fmt.Sprintf("h%d/r%d", h, i), Match: m})
		}
		v.Routes = append(v.Routes, &ir.Route{Name: fmt.Sprintf("h%d/all", h), Match: prefix("/")})
		vhosts = append(vhosts, v)
	}
	hdr := http.Header{"X-Canary": {"true"}, "User-Agent": {"bench"}, "Accept": {"*/*"}}
	for range 256 {
		v := vhosts[rng.IntN(len(vhosts))]
		i := rng.IntN(len(v.Routes))
		path := v.Routes[i].Match.Path.Value
		if v.Routes[i].Match.Path.Type == ir.PathPrefix {
			path += "/items/42"
		}
		reqs = append(reqs, &Request{Host: v.Domain + ":443", Path: path, Method: "GET", Header: hdr, RawQuery: "page=2"})
	}
	return vhosts, reqs
}

func benchMatch(b *testing.B, perHost int) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			vhosts, reqs := benchConfig(n, perHost)
			tab, err := Compile(vhosts, names)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range reqs {
				if _, ok := tab.Match(r); !ok {
					b.Fatalf("no match for %+v", r)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tab.Match(reqs[i&255])
				i++
			}
		})
	}
}

// BenchmarkMatch: routes spread over hostnames, 100 per host.
func BenchmarkMatch(b *testing.B) { benchMatch(b, 100) }

// BenchmarkMatchSingleHost: every route on one hostname.
func BenchmarkMatchSingleHost(b *testing.B) { benchMatch(b, 1<<30) }

// BenchmarkMatchRatio measures 10 and 10,000 routes in alternating chunks,
// so that both see the same machine load, and reports the cost of each and
// their ratio (the requirement is at most 1.5).
func BenchmarkMatchRatio(b *testing.B) {
	for _, c := range []struct {
		name    string
		perHost int
	}{{"hosts", 100}, {"single-host", 1 << 30}} {
		b.Run(c.name, func(b *testing.B) {
			var tabs [2]*Table[string]
			var reqs [2][]*Request
			for i, n := range []int{10, 10000} {
				vhosts, r := benchConfig(n, c.perHost)
				tab, err := Compile(vhosts, names)
				if err != nil {
					b.Fatal(err)
				}
				tabs[i], reqs[i] = tab, r
			}
			var spent [2]time.Duration
			b.ReportAllocs()
			for b.Loop() {
				for i := range tabs {
					start := time.Now()
					for _, r := range reqs[i] {
						tabs[i].Match(r)
					}
					spent[i] += time.Since(start)
				}
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*len(reqs[0])) }
			b.ReportMetric(per(spent[0]), "ns/match@10")
			b.ReportMetric(per(spent[1]), "ns/match@10000")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "ratio")
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for name, p := range map[string]string{
		"normal":  "/api/v1/users/12345/orders/%C3%A9",
		"rewrite": "/api//v1/./users/../users/%7e12345/orders/%c3%a9",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizePath(p)
			}
		})
	}
}
