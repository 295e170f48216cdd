// Package file is the Provider of configuration read from a directory of
// YAML files (the standalone gateway's source, and `causeway validate`).
//
// It watches by polling, with the standard library only: every
// Options.Interval it walks the directory and compares each file's size and
// modification time; when something changed it waits Options.Debounce for
// the writes to settle, re-reads the changed files and publishes the merge of
// every file's resources.
//
// Each file keeps its last good version. A file that is not valid YAML at
// all (a syntax error, typically half-way through an edit) does not withdraw
// its resources: its previous version stays in use and a Problem says so.
// Documents that are valid YAML but not valid resources are problems of that
// file's new version, as resource.Snapshot.Decode records them.
package file

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"causeway.dev/causeway/internal/provider"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// Options configure a Provider.
type Options struct {
	// Dir is the directory read, subfolders included (folders whose name
	// starts with "." are skipped). Files are those resource.IsConfigFile
	// accepts (*.yaml, *.yml, no dotfiles), taken in lexical path order.
	Dir string
	// Interval is the poll period; 0 means 200ms.
	Interval time.Duration
	// Debounce is how long to wait after a change is seen before reading,
	// so that a file being written is read once complete; 0 means 100ms,
	// a negative value means no wait.
	Debounce time.Duration
	// Logger receives changes and read errors; nil means slog.Default().
	Logger *slog.Logger
}

// recentWrite: a file modified less than this long ago is re-read at every
// poll, because file systems with a coarse mtime could hide a second write
// of the same size within the same tick.
const recentWrite = 2 * time.Second

// Provider reads and watches Options.Dir. Load and Run may be called from
// different goroutines.
type Provider struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	files   map[string]*file
	last    [sha256.Size]byte // fingerprint of the last snapshot returned or published
	hasLast bool

	// Test hooks: a snapshot was queued for publish; a scan was processed.
	produced func(*resource.Snapshot)
	updated  func()
}

var _ provider.Provider = (*Provider)(nil)

// stat is what is compared between polls.
type stat struct {
	size  int64
	mtime time.Time
}

// file is the state of one configuration file.
type file struct {
	stat    stat
	recheck bool // modified recently: read again at the next poll

	good     *resource.Snapshot // decoded from goodData; nil if never valid YAML
	goodData []byte

	part *resource.Snapshot // what this file contributes now
	// used and note identify part's content for change detection: the
	// bytes decoded and the extra problem added (broken or unreadable).
	used []byte
	note string
}

// New returns a Provider of opts.Dir. It does no I/O.
func New(opts Options) *Provider {
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	p := &Provider{opts: opts, log: opts.Logger, files: make(map[string]*file)}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p
}

// Load reads the directory once, synchronously, and returns the snapshot.
// The error is only for the directory itself (missing, unreadable);
// problems with files and documents are in Snapshot.Problems. A later Run
// does not publish this snapshot again unless something changed.
func (p *Provider) Load() (*resource.Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stats, err := p.scan()
	if err != nil {
		return nil, err
	}
	p.update(stats, time.Now())
	snap, key := p.build()
	p.last, p.hasLast = key, true
	return snap, nil
}

// Run publishes the current snapshot (unless Load returned the same), then
// each change, until ctx ends; it then returns nil. It returns an error at
// once if the directory cannot be read the first time. Later read errors
// are logged and the last snapshot stays in force.
func (p *Provider) Run(ctx context.Context, publish func(*resource.Snapshot)) error {
	p.mu.Lock()
	stats, err := p.scan()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.update(stats, time.Now())
	p.mu.Unlock()

	box := provider.NewLatest()
	done := make(chan struct{})
	go func() {
		defer close(done)
		box.Deliver(ctx, publish)
	}()
	defer func() { <-done }()

	p.emit(box)
	if p.updated != nil {
		p.updated()
	}
	tick := time.NewTicker(p.opts.Interval)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		stats, err := p.scanLocked()
		if err != nil {
			if err.Error() != lastErr {
				p.log.Error("config dir unreadable; keeping the last configuration", "dir", p.opts.Dir, "err", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		if !p.changed(stats) {
			continue
		}
		if p.opts.Debounce > 0 {
			t := time.NewTimer(p.opts.Debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			if stats, err = p.scanLocked(); err != nil {
				continue // reported at the next tick
			}
		}
		p.mu.Lock()
		p.update(stats, time.Now())
		p.mu.Unlock()
		p.emit(box)
		if p.updated != nil {
			p.updated()
		}
	}
}

// emit queues the current snapshot for publishing if its content differs
// from the last one returned or published.
func (p *Provider) emit(box *provider.Latest) {
	p.mu.Lock()
	snap, key := p.build()
	if p.hasLast && key == p.last {
		p.mu.Unlock()
		return
	}
	p.last, p.hasLast = key, true
	p.mu.Unlock()
	p.log.Info("configuration changed", "dir", p.opts.Dir, "problems", len(snap.Problems))
	box.Put(snap)
	if p.produced != nil {
		p.produced(snap)
	}
}

func (p *Provider) scanLocked() (map[string]stat, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scan()
}

// scan walks the directory and stats every configuration file.
func (p *Provider) scan() (map[string]stat, error) {
	dir := p.opts.Dir
	out := make(map[string]stat)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // vanished or unreadable below dir: skip it
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !resource.IsConfigFile(path) {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() && info.Mode()&fs.ModeSymlink == 0 {
			return nil
		}
		if info.Mode()&fs.ModeSymlink != 0 { // follow links to files, as Load does
			if info, err = os.Stat(path); err != nil || !info.Mode().IsRegular() {
				return nil
			}
		}
		out[path] = stat{size: info.Size(), mtime: info.ModTime()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading config dir: %w", err)
	}
	return out, nil
}

// changed reports whether stats differ from what was read last.
func (p *Provider) changed(stats map[string]stat) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(stats) != len(p.files) {
		return true
	}
	for path, st := range stats {
		f, ok := p.files[path]
		if !ok || f.recheck || !f.stat.mtime.Equal(st.mtime) || f.stat.size != st.size {
			return true
		}
	}
	return false
}

// update brings the per-file state in line with stats, reading the files
// that changed.
func (p *Provider) update(stats map[string]stat, now time.Time) {
	for path := range p.files {
		if _, ok := stats[path]; !ok {
			delete(p.files, path)
		}
	}
	for path, st := range stats {
		f := p.files[path]
		if f != nil && !f.recheck && f.stat.mtime.Equal(st.mtime) && f.stat.size == st.size {
			continue
		}
		if f == nil {
			f = &file{}
		}
		age := now.Sub(st.mtime)
		f.stat, f.recheck = st, age < recentWrite && age > -recentWrite
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			delete(p.files, path) // removed since the scan
			continue
		case err != nil:
			p.keepPrevious(path, f, fmt.Sprintf("cannot read file: %v", err))
		case f.part != nil && f.note == "" && bytes.Equal(data, f.used):
			// Touched, not changed.
		default:
			if err := checkYAML(data); err != nil {
				if f.good != nil {
					p.keepPrevious(path, f, fmt.Sprintf("file is not valid YAML (%v); its previous version is still in use", err))
					break
				}
				p.log.Warn("config file is not valid YAML", "file", path, "err", err)
			}
			part := resource.New()
			part.Decode(path, data)
			if err == nil {
				f.good, f.goodData = part, data
			}
			f.part, f.used, f.note = part, data, ""
		}
		p.files[path] = f
	}
}

// keepPrevious makes f contribute its last good version, plus a problem.
func (p *Provider) keepPrevious(path string, f *file, msg string) {
	if msg != f.note {
		p.log.Warn("config file rejected", "file", path, "reason", msg)
	}
	prob := resource.Problem{Source: status.Source{File: path}, Message: msg}
	if f.good == nil {
		part := resource.New()
		part.Problems = []resource.Problem{prob}
		f.part, f.used, f.note = part, nil, msg
		return
	}
	part := *f.good // shallow copy: the objects are immutable and shared
	part.Problems = append(slices.Clip(f.good.Problems), prob)
	f.part, f.used, f.note = &part, f.goodData, msg
}

// build merges the files' parts in path order and fingerprints the content
// they came from.
func (p *Provider) build() (*resource.Snapshot, [sha256.Size]byte) {
	paths := make([]string, 0, len(p.files))
	for path := range p.files {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	parts := make([]*resource.Snapshot, len(paths))
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	for i, path := range paths {
		f := p.files[path]
		parts[i] = f.part
		field([]byte(path))
		field(f.used)
		field([]byte(f.note))
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return resource.Merge(parts...), key
}

// checkYAML reports whether data is a well-formed YAML stream, document by
// document; whether the documents are valid resources is not its concern.
func checkYAML(data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", doc, err)
		}
		if _, err := yaml.YAMLToJSON(raw); err != nil {
			return fmt.Errorf("document %d: %w", doc, err)
		}
		if !blank(raw) { // numbered as Decode numbers them
			doc++
		}
	}
}

// blank reports whether a document holds nothing but comments and space.
func blank(raw []byte) bool {
	for line := range bytes.Lines(raw) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}
