package route

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// rt builds a route named name with the given match.
func rt(name string, m ir.Match) *ir.Route {
	return &ir.Route{Name: name, Origin: "HTTPRoute/ns/" + name, Match: m}
}

func prefix(v string) ir.Match { return ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: v}} }
func exact(v string) ir.Match  { return ir.Match{Path: ir.PathMatch{Type: ir.PathExact, Value: v}} }
func regex(v string) ir.Match  { return ir.Match{Path: ir.PathMatch{Type: ir.PathRegex, Value: v}} }

func vh(domain string, routes ...*ir.Route) *ir.VirtualHost {
	return &ir.VirtualHost{Domain: domain, Routes: routes}
}

func names(vh *ir.VirtualHost, r *ir.Route) (string, error) { return r.Name, nil }

func mustCompile(t testing.TB, vhosts ...*ir.VirtualHost) *Table[string] {
	t.Helper()
	tab, err := Compile(vhosts, names)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

type matchCase struct {
	name string
	req  Request
	want string // "" for no match
}

func runCases(t *testing.T, tab *Table[string], cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := tab.Match(&c.req)
			if ok != (c.want != "") || got != c.want {
				t.Errorf("Match(%+v) = %q, %v; want %q", c.req, got, ok, c.want)
			}
		})
	}
}

func TestHostSelection(t *testing.T) {
	tab := mustCompile(t,
		vh("foo.example.com", rt("exact", prefix("/"))),
		vh("empty.example.com", rt("empty-api", prefix("/api"))),
		vh("*.b.example.com", rt("wild-b", prefix("/"))),
		vh("*.example.com", rt("wild", prefix("/"))),
		vh("*.example.com", rt("wild-dup", prefix("/"))), // shadowed duplicate
		vh("*", rt("any", prefix("/"))),
	)
	runCases(t, tab, []matchCase{
		{"exact", Request{Host: "foo.example.com", Path: "/"}, "exact"},
		{"exact upper case", Request{Host: "FOO.Example.COM", Path: "/"}, "exact"},
		{"exact with port", Request{Host: "foo.example.com:8080", Path: "/"}, "exact"},
		{"exact trailing dot", Request{Host: "foo.example.com.", Path: "/"}, "exact"},
		{"exact trailing dot and port", Request{Host: "Foo.Example.Com.:80", Path: "/"}, "exact"},
		{"wildcard one label", Request{Host: "bar.example.com", Path: "/"}, "wild"},
		{"wildcard several labels", Request{Host: "a.c.example.com", Path: "/"}, "wild"},
		{"longest wildcard", Request{Host: "a.b.example.com", Path: "/"}, "wild-b"},
		{"longest wildcard deep", Request{Host: "x.y.b.example.com", Path: "/"}, "wild-b"},
		{"wildcard not the bare domain", Request{Host: "example.com", Path: "/"}, "any"},
		{"bare b domain goes to shorter wildcard", Request{Host: "b.example.com", Path: "/"}, "wild"},
		{"star", Request{Host: "other.org", Path: "/"}, "any"},
		{"empty host", Request{Host: "", Path: "/"}, "any"},
		{"ipv6 literal with port", Request{Host: "[::1]:80", Path: "/"}, "any"},
		{"ipv4 with port", Request{Host: "127.0.0.1:80", Path: "/"}, "any"},
		{"no fall through", Request{Host: "empty.example.com", Path: "/web"}, ""},
		{"selected host route", Request{Host: "empty.example.com", Path: "/api/x"}, "empty-api"},
		{"overlong host", Request{Host: strings.Repeat("a", 300) + ".example.com", Path: "/"}, "any"},
	})

	noStar := mustCompile(t, vh("foo.example.com", rt("exact", prefix("/"))), vh("[::1]", rt("v6", prefix("/"))))
	runCases(t, noStar, []matchCase{
		{"no star", Request{Host: "bar.example.com", Path: "/"}, ""},
		{"ipv6 exact", Request{Host: "[::1]:8443", Path: "/"}, "v6"},
		{"ipv6 no port", Request{Host: "[::1]", Path: "/"}, "v6"},
	})
}

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"a.com":              "a.com",
		"a.com:80":           "a.com",
		"a.com:":             "a.com",
		"[::1]:80":           "[::1]",
		"[::1]":              "[::1]",
		"[::1":               "[::1",
		"::1":                "::1",
		"[fe80::1%25eth0]:1": "[fe80::1%25eth0]",
	} {
		if got := StripPort(in); got != want {
			t.Errorf("StripPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathMatch(t *testing.T) {
	tab := mustCompile(t, vh("*",
		rt("exact-abc", exact("/abc")),
		rt("prefix-abc", prefix("/abc")),
		rt("prefix-slash", prefix("/x/y/")),
		rt("prefix-enc", prefix("/%7euser")),
		rt("regex", regex("/re/[0-9]+")),
		rt("regex-alt", regex("/alt|/alt2")),
		rt("exact-enc", exact("/a%2fb")),
	))
	runCases(t, tab, []matchCase{
		{"exact", Request{Path: "/abc"}, "exact-abc"},
		{"prefix with slash", Request{Path: "/abc/"}, "prefix-abc"},
		{"prefix deeper", Request{Path: "/abc/def"}, "prefix-abc"},
		{"prefix not partial segment", Request{Path: "/abcd"}, ""},
		{"prefix trailing slash ignored", Request{Path: "/x/y"}, "prefix-slash"},
		{"prefix trailing slash deeper", Request{Path: "/x/y/z"}, "prefix-slash"},
		{"prefix trailing slash not partial", Request{Path: "/x/yz"}, ""},
		{"prefix parent", Request{Path: "/x"}, ""},
		{"prefix value normalised", Request{Path: "/~user/a"}, "prefix-enc"},
		{"regex", Request{Path: "/re/123"}, "regex"},
		{"regex anchored end", Request{Path: "/re/123/x"}, ""},
		{"regex anchored start", Request{Path: "/x/re/123"}, ""},
		{"regex alternation anchored", Request{Path: "/alt2"}, "regex-alt"},
		{"regex alternation partial", Request{Path: "/alt2x"}, ""},
		{"exact with encoded slash", Request{Path: "/a%2Fb"}, "exact-enc"},
		{"encoded slash is not a separator", Request{Path: "/a/b"}, ""},
		{"root", Request{Path: "/"}, ""},
	})

	root := mustCompile(t, vh("*", rt("a", prefix("/a")), rt("root", prefix("/")), rt("never", exact("/a"))))
	runCases(t, root, []matchCase{
		{"root matches everything", Request{Path: "/zzz/y"}, "root"},
		{"root matches root", Request{Path: "/"}, "root"},
		{"earlier prefix wins over later exact", Request{Path: "/a"}, "a"},
		{"unnormalised path still gets root", Request{Path: "zz"}, "root"},
	})
}

func TestListOrderAcrossIndexes(t *testing.T) {
	tab := mustCompile(t, vh("*",
		rt("regex-get", ir.Match{Path: ir.PathMatch{Type: ir.PathRegex, Value: "/a/.*"}, Method: "GET"}),
		rt("exact-post", ir.Match{Path: ir.PathMatch{Type: ir.PathExact, Value: "/a/b"}, Method: "POST"}),
		rt("deep-prefix-hdr", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/a/b"},
			Headers: []ir.StringMatch{{Name: "X-A", Type: ir.MatchExact, Value: "1"}}}),
		rt("shallow-prefix", prefix("/a")),
		rt("exact-any", exact("/a/b")),
	))
	runCases(t, tab, []matchCase{
		{"regex first", Request{Path: "/a/b", Method: "GET"}, "regex-get"},
		{"exact second", Request{Path: "/a/b", Method: "POST"}, "exact-post"},
		{"deep prefix third", Request{Path: "/a/b", Method: "PUT", Header: http.Header{"X-A": {"1"}}}, "deep-prefix-hdr"},
		{"shallow prefix before later exact", Request{Path: "/a/b", Method: "PUT"}, "shallow-prefix"},
	})
}

func TestMethodHeaderQuery(t *testing.T) {
	tab := mustCompile(t, vh("*",
		rt("method", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/m"}, Method: "POST"}),
		rt("hdr-exact", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/h"},
			Headers: []ir.StringMatch{{Name: "x-version", Type: ir.MatchExact, Value: "v1"}}}),
		rt("hdr-regex", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/h"},
			Headers: []ir.StringMatch{{Name: "X-Version", Type: ir.MatchRegex, Value: "v[0-9]"}}}),
		rt("hdr-empty", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/e"},
			Headers: []ir.StringMatch{{Name: "X-Empty", Value: ""}}}),
		rt("hdr-dup", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/d"},
			Headers: []ir.StringMatch{{Name: "X-D", Value: "1"}, {Name: "x-d", Value: "2"}}}),
		rt("q-exact", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/q"},
			Query: []ir.StringMatch{{Name: "v", Type: ir.MatchExact, Value: "a b/c"}}}),
		rt("q-regex", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/q"},
			Query: []ir.StringMatch{{Name: "r", Type: ir.MatchRegex, Value: "[0-9]+"}}}),
		rt("q-regex-dec", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/q"},
			Query: []ir.StringMatch{{Name: "s", Type: ir.MatchRegex, Value: "x y"}}}),
		rt("q-case", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/q"},
			Query: []ir.StringMatch{{Name: "Name", Value: "1"}}}),
		rt("q-enc-name", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/q"},
			Query: []ir.StringMatch{{Name: "a b", Value: "2"}}}),
		rt("q-and-h", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/both"}, Method: "GET",
			Headers: []ir.StringMatch{{Name: "X-A", Value: "1"}, {Name: "X-B", Type: ir.MatchRegex, Value: "b.*"}},
			Query:   []ir.StringMatch{{Name: "a", Value: "1"}, {Name: "b", Type: ir.MatchRegex, Value: "2|3"}}}),
	))
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	runCases(t, tab, []matchCase{
		{"method ok", Request{Path: "/m", Method: "POST"}, "method"},
		{"method wrong", Request{Path: "/m", Method: "GET"}, ""},
		{"method case-sensitive", Request{Path: "/m", Method: "post"}, ""},
		{"header exact, name canonicalised", Request{Path: "/h", Header: h("X-Version", "v1")}, "hdr-exact"},
		{"header exact value case-sensitive", Request{Path: "/h", Header: h("X-Version", "V1")}, ""},
		{"header regex", Request{Path: "/h", Header: h("X-Version", "v2")}, "hdr-regex"},
		{"header regex whole value", Request{Path: "/h", Header: h("X-Version", "v22")}, ""},
		{"header missing", Request{Path: "/h"}, ""},
		{"header multi joined exact", Request{Path: "/h", Header: http.Header{"X-Version": {"v", "1"}}}, ""},
		{"header empty present", Request{Path: "/e", Header: h("X-Empty", "")}, "hdr-empty"},
		{"header empty missing", Request{Path: "/e"}, ""},
		{"header dup first wins", Request{Path: "/d", Header: h("X-D", "1")}, "hdr-dup"},
		{"header dup second ignored", Request{Path: "/d", Header: h("X-D", "2")}, ""},
		{"query exact decoded plus and percent", Request{Path: "/q", RawQuery: "v=a+b%2Fc"}, "q-exact"},
		{"query exact decoded lower hex", Request{Path: "/q", RawQuery: "v=a%20b%2fc"}, "q-exact"},
		{"query exact first value", Request{Path: "/q", RawQuery: "x=1&v=a+b/c&v=z"}, "q-exact"},
		{"query exact first value wins", Request{Path: "/q", RawQuery: "v=z&v=a+b/c"}, ""},
		{"query malformed pair skipped", Request{Path: "/q", RawQuery: "v=%zz&v=a+b/c"}, "q-exact"},
		{"query semicolon pair skipped", Request{Path: "/q", RawQuery: "v=a;b&v=a+b/c"}, "q-exact"},
		{"query regex", Request{Path: "/q", RawQuery: "r=123"}, "q-regex"},
		{"query regex whole", Request{Path: "/q", RawQuery: "r=123a"}, ""},
		{"query regex decoded", Request{Path: "/q", RawQuery: "s=x%20y"}, "q-regex-dec"},
		{"query name case-sensitive", Request{Path: "/q", RawQuery: "name=1"}, ""},
		{"query name exact", Request{Path: "/q", RawQuery: "Name=1"}, "q-case"},
		{"query name decoded", Request{Path: "/q", RawQuery: "a%20b=2"}, "q-enc-name"},
		{"query missing", Request{Path: "/q", RawQuery: ""}, ""},
		{"query no value", Request{Path: "/q", RawQuery: "v"}, ""},
		{"all conditions", Request{Path: "/both", Method: "GET", Header: h("X-A", "1", "X-B", "bee"), RawQuery: "a=1&b=3"}, "q-and-h"},
		{"all conditions but one query", Request{Path: "/both", Method: "GET", Header: h("X-A", "1", "X-B", "bee"), RawQuery: "a=1&b=4"}, ""},
		{"all conditions but one header", Request{Path: "/both", Method: "GET", Header: h("X-A", "2", "X-B", "bee"), RawQuery: "a=1&b=3"}, ""},
	})

	multi := mustCompile(t, vh("*",
		rt("joined", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
			Headers: []ir.StringMatch{{Name: "Accept", Value: "a,b"}}}),
		rt("joined-re", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
			Headers: []ir.StringMatch{{Name: "Accept", Type: ir.MatchRegex, Value: "x,y+"}}}),
	))
	runCases(t, multi, []matchCase{
		{"joined exact", Request{Path: "/", Header: http.Header{"Accept": {"a", "b"}}}, "joined"},
		{"joined exact, one value", Request{Path: "/", Header: http.Header{"Accept": {"a,b"}}}, "joined"},
		{"joined exact, wrong split", Request{Path: "/", Header: http.Header{"Accept": {"a", "b", ""}}}, ""},
		{"joined regex", Request{Path: "/", Header: http.Header{"Accept": {"x", "yy"}}}, "joined-re"},
	})
}

func TestHeaderHoldsJoin(t *testing.T) {
	cases := []struct {
		want string
		vals []string
		ok   bool
	}{
		{"a,b", []string{"a", "b"}, true},
		{"a,b", []string{"a,b"}, true},
		{"a,,b", []string{"a", "", "b"}, true},
		{"a,b", []string{"a", "b", ""}, false},
		{"a,b,", []string{"a", "b", ""}, true},
		{"ab", []string{"a", "b"}, false},
		{"a,bc", []string{"a", "b"}, false},
		{"", []string{"", ""}, false},
		{",", []string{"", ""}, true},
	}
	for _, c := range cases {
		m := valueMatch{value: c.want}
		if got := headerHolds(&m, c.vals); got != c.ok {
			t.Errorf("headerHolds(%q, %q) = %v", c.want, c.vals, got)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name   string
		vhosts []*ir.VirtualHost
		build  func(*ir.VirtualHost, *ir.Route) (string, error)
		want   string
	}{
		{"bad path regex", []*ir.VirtualHost{vh("*", rt("r1", regex("(")))}, names, "route r1 (HTTPRoute/ns/r1)"},
		// Would escape the anchoring group if pasted into it unchecked.
		{"regex breaking out of the anchors", []*ir.VirtualHost{vh("*", rt("r0", regex("/x)|(/admin")))}, names, "route r0"},
		{"header regex breaking out", []*ir.VirtualHost{vh("*", rt("r0h", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
			Headers: []ir.StringMatch{{Name: "X", Type: ir.MatchRegex, Value: "a)|(b"}}}))}, names, "route r0h"},
		{"bad header regex", []*ir.VirtualHost{vh("*", rt("r2", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
			Headers: []ir.StringMatch{{Name: "X", Type: ir.MatchRegex, Value: "[a"}}}))}, names, "route r2"},
		{"bad query regex", []*ir.VirtualHost{vh("*", rt("r3", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
			Query: []ir.StringMatch{{Name: "q", Type: ir.MatchRegex, Value: "*"}}}))}, names, "route r3"},
		{"build error", []*ir.VirtualHost{vh("*", rt("r4", prefix("/")))},
			func(*ir.VirtualHost, *ir.Route) (string, error) { return "", boom }, "route r4 (HTTPRoute/ns/r4): boom"},
		{"relative path", []*ir.VirtualHost{vh("*", rt("r5", exact("abc")))}, names, "route r5"},
		{"nul path", []*ir.VirtualHost{vh("*", rt("r6", prefix("/a%00")))}, names, "route r6"},
		{"unknown path type", []*ir.VirtualHost{vh("*", rt("r7", ir.Match{Path: ir.PathMatch{Type: "Glob", Value: "/"}}))}, names, "route r7"},
		{"unknown header type", []*ir.VirtualHost{vh("*", rt("r8", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"},
			Headers: []ir.StringMatch{{Name: "X", Type: "Prefix", Value: "a"}}}))}, names, "route r8"},
		{"bad wildcard", []*ir.VirtualHost{vh("*.*.example.com")}, names, "invalid wildcard"},
		{"bad domain", []*ir.VirtualHost{vh("a*.example.com")}, names, "invalid domain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.vhosts, c.build)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if c.name == "build error" && !errors.Is(err, boom) {
				t.Errorf("err %v does not wrap the build error", err)
			}
		})
	}
}

func TestBuildCalledPerRouteInOrder(t *testing.T) {
	var got []string
	vhosts := []*ir.VirtualHost{vh("a", rt("1", prefix("/")), rt("2", exact("/x"))), vh("*", rt("3", regex(".*")))}
	tab, err := Compile(vhosts, func(v *ir.VirtualHost, r *ir.Route) (int, error) {
		got = append(got, v.Domain+"/"+r.Name)
		return len(got), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "a/1 a/2 */3" {
		t.Errorf("build calls = %v", got)
	}
	if v, ok := tab.Match(&Request{Host: "b", Path: "/q"}); !ok || v != 3 {
		t.Errorf("Match = %v, %v; want 3", v, ok)
	}
}

func TestEmptyTable(t *testing.T) {
	tab := mustCompile(t)
	if v, ok := tab.Match(&Request{Host: "a", Path: "/"}); ok {
		t.Errorf("empty table matched %q", v)
	}
	var none *Table[string]
	if v, ok := none.Match(&Request{Host: "a", Path: "/"}); ok {
		t.Errorf("nil table matched %q", v)
	}
	// A host without routes matches nothing, also for "/".
	empty := mustCompile(t, vh("*"))
	if v, ok := empty.Match(&Request{Host: "a", Path: "/"}); ok {
		t.Errorf("host without routes matched %q", v)
	}
}

// TestDeepPaths covers paths deeper than the walk remembers (maxDepth):
// deeper prefixes are scanned during the walk and must still lose to an
// earlier route.
func TestDeepPaths(t *testing.T) {
	deep := ""
	for i := 0; i < maxDepth+4; i++ {
		deep += fmt.Sprintf("/s%d", i)
	}
	tab := mustCompile(t, vh("*",
		rt("deep-post", ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: deep}, Method: "POST"}),
		rt("deep-exact", exact(deep)),
		rt("deep-prefix", prefix(deep)),
		rt("root", prefix("/")),
	))
	runCases(t, tab, []matchCase{
		{"deep exact", Request{Path: deep}, "deep-exact"},
		{"deep method", Request{Path: deep, Method: "POST"}, "deep-post"},
		{"deeper prefix", Request{Path: deep + "/x/y"}, "deep-prefix"},
		{"deep exact with slash is prefix", Request{Path: deep + "/"}, "deep-prefix"},
		{"shallower", Request{Path: "/s0/s1"}, "root"},
	})
	first := mustCompile(t, vh("*", rt("root", prefix("/")), rt("deep", prefix(deep))))
	runCases(t, first, []matchCase{{"earlier root beats deep prefix", Request{Path: deep + "/z"}, "root"}})
}

// TestConcurrentMatch shares one table among goroutines; run with -race.
func TestConcurrentMatch(t *testing.T) {
	vhosts, reqs := benchConfig(2000, 100)
	tab, err := Compile(vhosts, names)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(reqs))
	for i, r := range reqs {
		var ok bool
		if want[i], ok = tab.Match(r); !ok {
			t.Fatalf("request %d (%+v) matches nothing", i, r)
		}
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for n := 0; n < 20; n++ {
				for i, r := range reqs {
					if got, _ := tab.Match(r); got != want[i] {
						errs <- fmt.Errorf("request %d: got %q, want %q", i, got, want[i])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestManyHostsAndPaths checks every entry of large tables, where the hash
// tables probe and the trie uses both linear and hashed children.
func TestManyHostsAndPaths(t *testing.T) {
	var vhosts []*ir.VirtualHost
	for h := 0; h < 300; h++ {
		v := vh(fmt.Sprintf("h%d.example.com", h))
		for i := 0; i < 30; i++ {
			v.Routes = append(v.Routes, rt(fmt.Sprintf("h%d/p%d", h, i), prefix(fmt.Sprintf("/p%d/q%d", i, i%3))))
		}
		v.Routes = append(v.Routes, rt(fmt.Sprintf("h%d/e", h), exact("/p1/q1/")))
		w := vh(fmt.Sprintf("*.w%d.example.com", h), rt(fmt.Sprintf("w%d", h), prefix("/")))
		vhosts = append(vhosts, v, w)
	}
	tab := mustCompile(t, vhosts...)
	for h := 0; h < 300; h++ {
		host := fmt.Sprintf("H%d.example.COM", h)
		if h%2 == 0 {
			host = fmt.Sprintf("h%d.example.com:8080", h)
		}
		for i := 0; i < 30; i++ {
			req := &Request{Host: host, Path: fmt.Sprintf("/p%d/q%d/r", i, i%3)}
			if got, ok := tab.Match(req); !ok || got != fmt.Sprintf("h%d/p%d", h, i) {
				t.Fatalf("Match(%+v) = %q, %v", req, got, ok)
			}
			req.Path = fmt.Sprintf("/p%d/q%d", i, (i+1)%3)
			if got, ok := tab.Match(req); ok {
				t.Fatalf("Match(%+v) = %q, want none", req, got)
			}
		}
		if got, _ := tab.Match(&Request{Host: host, Path: "/p1/q1/"}); got != fmt.Sprintf("h%d/p1", h) {
			t.Fatalf("earlier prefix lost to exact: %q", got)
		}
		wreq := &Request{Host: fmt.Sprintf("a.B.w%d.example.com", h), Path: "/x"}
		if got, ok := tab.Match(wreq); !ok || got != fmt.Sprintf("w%d", h) {
			t.Fatalf("Match(%+v) = %q, %v", wreq, got, ok)
		}
	}
	if got, ok := tab.Match(&Request{Host: "h300.example.com", Path: "/p1/q1"}); ok {
		t.Fatalf("unknown host matched %q", got)
	}
}
