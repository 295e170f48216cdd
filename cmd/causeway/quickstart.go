package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"causeway.dev/causeway/examples"
	"causeway.dev/causeway/internal/demo"
)

// runQuickstart starts the demo backends the quickstart routes to and a
// gateway on the embedded examples/quickstart (or --config DIR).
func runQuickstart(args []string) error {
	fs := flag.NewFlagSet("quickstart", flag.ExitOnError)
	var f gatewayFlags
	f.register(fs)
	_ = fs.Parse(args)
	if f.config == "" {
		dir, err := os.MkdirTemp("", "causeway-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := extract(dir); err != nil {
			return err
		}
		f.config = dir
	}
	for _, b := range []struct{ addr, name string }{
		{"127.0.0.1:9001", "v1"}, {"127.0.0.1:9002", "v2"}, {"127.0.0.1:9003", "admin-api"},
	} {
		go func() {
			if err := demo.Serve(b.addr, b.name); err != nil {
				fmt.Fprintln(os.Stderr, "causeway quickstart:", err)
			}
		}()
	}
	fmt.Fprintf(os.Stderr, `causeway quickstart: gateway on http://127.0.0.1:8080, config in %s
  try: curl http://127.0.0.1:8080/            (weighted 80/20 between v1 and v2)
       curl -H 'x-canary: true' http://127.0.0.1:8080/   (header match: always v2)
       curl http://127.0.0.1:8080/admin/users  (path prefix, rewritten to /users)
       curl http://127.0.0.1:9901/status       (every resource's conditions)
`, f.config)
	return serve(f)
}

func extract(dir string) error {
	return fs.WalkDir(examples.Quickstart, "quickstart", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := examples.Quickstart.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(path)), data, 0o644)
	})
}
