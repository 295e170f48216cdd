package file

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

var quiet = slog.New(slog.DiscardHandler)

// write replaces a file atomically (through a dotfile, which the provider
// ignores, and a rename), so that no poll can see it half-written.
func write(t *testing.T, dir, rel, data string) string {
	t.Helper()
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func svc(name string, port int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: %d}]}\n", name, port)
}

// services lists "name:port" of the snapshot's services, in order.
func services(s *resource.Snapshot) string {
	var out []string
	for _, sv := range s.Services {
		port := 0
		if len(sv.Spec.Ports) > 0 {
			port = int(sv.Spec.Ports[0].Port)
		}
		out = append(out, fmt.Sprintf("%s:%d", sv.Name, port))
	}
	return strings.Join(out, ",")
}

func problems(s *resource.Snapshot) string {
	var out []string
	for _, p := range s.Problems {
		out = append(out, p.Source.String()+" "+p.Message)
	}
	return strings.Join(out, "\n")
}

// run starts p.Run and returns the channel of what it publishes; the test's
// end stops it and checks that it returned nil.
func run(t *testing.T, p *Provider) <-chan *resource.Snapshot {
	t.Helper()
	ch := make(chan *resource.Snapshot, 100)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx, func(s *resource.Snapshot) { ch <- s }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return ch
}

// next returns the next snapshot published within d.
func next(t *testing.T, ch <-chan *resource.Snapshot, d time.Duration) *resource.Snapshot {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(d):
		t.Fatalf("nothing published within %v", d)
		return nil
	}
}

// publishWithin is the promise to users: a saved change is applied within
// one second (with the default 200ms poll and 100ms debounce).
const publishWithin = time.Second

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "b.yaml", svc("b", 80)+"---\n"+svc("c", 81))
	write(t, dir, "a.yml", svc("a", 82))
	write(t, dir, "sub/deeper/d.yaml", svc("d", 83))
	write(t, dir, ".hidden/e.yaml", svc("e", 84))
	write(t, dir, "sub/.f.yaml", svc("f", 85))
	write(t, dir, "notes.txt", svc("g", 86))
	write(t, dir, "empty.yaml", "# nothing yet\n")

	s, err := New(Options{Logger: quiet, Dir: dir}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := services(s), "a:82,b:80,c:81,d:83"; got != want {
		t.Errorf("services %s, want %s", got, want)
	}
	if got := s.Source(status.Ref{Kind: "Service", Namespace: "default", Name: "c"}); got != (status.Source{File: filepath.Join(dir, "b.yaml"), Doc: 2}) {
		t.Errorf("source of c = %v", got)
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems:\n%s", problems(s))
	}

	// The same as resource.Load, which `causeway validate` used before.
	ref, err := resource.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if services(ref) != services(s) || len(ref.Sources) != len(s.Sources) {
		t.Errorf("Load differs from resource.Load: %s vs %s", services(s), services(ref))
	}
}

func TestLoadMissingDir(t *testing.T) {
	p := New(Options{Logger: quiet, Dir: filepath.Join(t.TempDir(), "nope")})
	if _, err := p.Load(); err == nil {
		t.Error("Load of a missing dir succeeded")
	}
	if err := p.Run(context.Background(), func(*resource.Snapshot) { t.Error("published") }); err == nil {
		t.Error("Run on a missing dir succeeded")
	}
}

func TestAddModifyDelete(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", svc("a", 80))
	ch := run(t, New(Options{Logger: quiet, Dir: dir}))
	if got := services(next(t, ch, publishWithin)); got != "a:80" {
		t.Fatalf("initial: %s", got)
	}

	write(t, dir, "b.yaml", svc("b", 90))
	if got := services(next(t, ch, publishWithin)); got != "a:80,b:90" {
		t.Errorf("after add: %s", got)
	}

	write(t, dir, "a.yaml", svc("a", 81))
	if got := services(next(t, ch, publishWithin)); got != "a:81,b:90" {
		t.Errorf("after modify: %s", got)
	}

	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	if got := services(next(t, ch, publishWithin)); got != "b:90" {
		t.Errorf("after delete: %s", got)
	}

	// A new subfolder, and a file appearing in a dot folder (ignored): the
	// next publish has the first and not the second.
	write(t, dir, ".git/x.yaml", svc("x", 1))
	write(t, dir, "team/c.yaml", svc("c", 70))
	s := next(t, ch, publishWithin)
	if got := services(s); got != "b:90,c:70" {
		t.Errorf("after subfolder: %s", got)
	}
	if got := s.Source(status.Ref{Kind: "Service", Namespace: "default", Name: "c"}).File; got != filepath.Join(dir, "team", "c.yaml") {
		t.Errorf("source of c: %s", got)
	}
}

// A file saved half-way through an edit must not withdraw its resources.
func TestBrokenFileKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", svc("a", 80)+"---\n"+svc("a2", 80))
	write(t, dir, "b.yaml", svc("b", 90))
	ch := run(t, New(Options{Logger: quiet, Dir: dir, Interval: 20 * time.Millisecond, Debounce: 20 * time.Millisecond}))
	if got := services(next(t, ch, 5*time.Second)); got != "a:80,a2:80,b:90" {
		t.Fatalf("initial: %s", got)
	}

	// A syntax error in the second document: the whole file is broken.
	write(t, dir, "a.yaml", svc("a", 81)+"---\napiVersion: v1\nkind: Service\nmetadata: {name: a2\n  spec: [\n")
	s := next(t, ch, 5*time.Second)
	if got := services(s); got != "a:80,a2:80,b:90" {
		t.Errorf("broken file: services %s, want the previous version", got)
	}
	if len(s.Problems) != 1 || s.Problems[0].Source.File != a ||
		!strings.Contains(s.Problems[0].Message, "not valid YAML") || !strings.Contains(s.Problems[0].Message, "previous version is still in use") {
		t.Errorf("broken file: problems\n%s", problems(s))
	}

	// Fixed, with one document that is valid YAML but not a valid Service:
	// that document is a problem of the new version; the rest is taken.
	write(t, dir, "a.yaml", svc("a", 82)+"---\napiVersion: v1\nkind: Service\nmetadata: {name: a2}\nspec: {portz: 1}\n")
	s = next(t, ch, 5*time.Second)
	if got := services(s); got != "a:82,b:90" {
		t.Errorf("fixed file: services %s", got)
	}
	if len(s.Problems) != 1 || s.Problems[0].Source != (status.Source{File: a, Doc: 2}) || !strings.Contains(s.Problems[0].Message, "portz") {
		t.Errorf("fixed file: problems\n%s", problems(s))
	}
}

// A file that is broken from the start has no previous version: its
// readable documents are taken and the broken one reported.
func TestBrokenFromStart(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", svc("a", 80)+"---\nkind: [\n")
	s, err := New(Options{Logger: quiet, Dir: dir}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := services(s); got != "a:80" {
		t.Errorf("services %s", got)
	}
	if len(s.Problems) != 1 || s.Problems[0].Source.Doc != 2 {
		t.Errorf("problems:\n%s", problems(s))
	}
}

// Nothing is published when files are touched or rewritten unchanged, and
// Run does not republish what Load returned.
func TestNoPublishWithoutChange(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", svc("a", 80))
	p := New(Options{Logger: quiet, Dir: dir, Interval: 20 * time.Millisecond, Debounce: 20 * time.Millisecond})
	if _, err := p.Load(); err != nil {
		t.Fatal(err)
	}
	updated := make(chan struct{}, 1)
	p.updated = func() {
		select {
		case updated <- struct{}{}:
		default: // one wake-up pending is enough
		}
	}
	ch := run(t, p)

	// Same bytes, new mtime: processed, not published.
	write(t, dir, "a.yaml", svc("a", 80))
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := os.Chtimes(a, future, future); err != nil {
		t.Fatal(err)
	}
	// Wait until the provider has read the touched file.
	deadline := time.After(5 * time.Second)
	for seen := false; !seen; {
		select {
		case <-updated:
		case <-deadline:
			t.Fatal("touch not noticed")
		}
		p.mu.Lock()
		seen = p.files[a] != nil && p.files[a].stat.mtime.Equal(future)
		p.mu.Unlock()
	}
	write(t, dir, "a.yaml", svc("a", 81))
	if got := services(next(t, ch, 5*time.Second)); got != "a:81" {
		t.Errorf("first publish is %s, want the real change a:81", got)
	}
}

// Under rapid changes with a slow consumer, the consumer gets the newest
// snapshot next, not the ones in between.
func TestLatestWins(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", svc("a", 1))
	p := New(Options{Logger: quiet, Dir: dir, Interval: 10 * time.Millisecond, Debounce: -1})
	produced := make(chan *resource.Snapshot, 100)
	p.produced = func(s *resource.Snapshot) { produced <- s }

	release := make(chan struct{})
	got := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- p.Run(ctx, func(s *resource.Snapshot) {
			got <- services(s)
			<-release // the first publish blocks until the test says
		})
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()

	waitProduced := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case s := <-produced:
				if services(s) == want {
					return
				}
			case <-deadline:
				t.Fatalf("%s never produced", want)
			}
		}
	}
	waitProduced("a:1")
	if s := <-got; s != "a:1" {
		t.Fatalf("initial %s", s)
	}
	// The consumer is now blocked in publish; change three times.
	for port := 2; port <= 4; port++ {
		write(t, dir, "a.yaml", svc("a", port))
		waitProduced(fmt.Sprintf("a:%d", port))
	}
	close(release)
	select {
	case s := <-got:
		if s != "a:4" {
			t.Errorf("after the slow publish: %s, want a:4 (intermediate skipped)", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("latest not delivered")
	}
	// And only that one: a further change comes next.
	write(t, dir, "a.yaml", svc("a", 5))
	select {
	case s := <-got:
		if s != "a:5" {
			t.Errorf("next publish %s, want a:5", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a:5 not delivered")
	}
}

// Rapid in-place writes with the default debounce: whatever is published is
// in order, never twice the same, and ends with the last write.
func TestBurstOfWrites(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", svc("a", 1))
	ch := run(t, New(Options{Logger: quiet, Dir: dir}))
	next(t, ch, publishWithin)
	for port := 2; port <= 30; port++ {
		// In place (truncate, write): a poll may catch the file empty.
		if err := os.WriteFile(a, []byte(svc("a", port)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var seen []int
	for {
		s := next(t, ch, 5*time.Second)
		if len(s.Services) == 0 {
			continue // caught truncated
		}
		port := int(s.Services[0].Spec.Ports[0].Port)
		seen = append(seen, port)
		if port == 30 {
			break
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Errorf("published out of order or twice: %v", seen)
		}
	}
	if len(seen) >= 29 {
		t.Logf("no coalescing happened: %v", seen)
	}
}
