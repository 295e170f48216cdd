package main

import (
	"flag"

	"causeway.dev/causeway/internal/demo"
)

func runDemoBackend(args []string) error {
	fs := flag.NewFlagSet("demo-backend", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9001", "address to listen on")
	name := fs.String("name", "demo", "name reported in answers (field backend, header X-Backend)")
	_ = fs.Parse(args)
	return demo.Serve(*listen, *name)
}
