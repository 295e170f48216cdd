// Command causeway is the gateway, its configuration checker and a demo
// backend, in one binary. Each subcommand wires packages explicitly; the
// logic lives in internal/.
package main

import (
	"fmt"
	"os"
)

const usage = `causeway: a gateway that grows into a service mesh

usage:
  causeway gateway --config DIR [flags]   serve the Gateway API resources in DIR
  causeway quickstart [flags]             the built-in example: gateway and demo backends
  causeway controller [--kubeconfig PATH] [--gateway-address-pool CIDR,...]
                                          serve a cluster's Gateways in-process, writing their status
  causeway control --config DIR --tokens FILE [flags]
                                          stream the resources in DIR to remote proxies
  causeway proxy --control ADDR --gateways NS/NAME --ca FILE [flags]
                                          a data plane configured by a control plane
  causeway ctl proxy-status [--control-admin ADDR]
                                          the proxies connected to a control plane
  causeway validate DIR                   print every resource's status; exit 1 if any is invalid
  causeway demo-backend [--listen ADDR] [--name NAME]
                                          an echo backend for examples and tests
  causeway version

Run "causeway COMMAND -h" for a command's flags.
`

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "gateway":
		err = runGateway(args)
	case "control":
		err = runControl(args)
	case "proxy":
		err = runProxy(args)
	case "ctl":
		err = runCtl(args, os.Stdout)
	case "quickstart":
		err = runQuickstart(args)
	case "controller":
		err = runController(args)
	case "validate":
		var ok bool
		ok, err = runValidate(args, os.Stdout)
		if err == nil && !ok {
			os.Exit(1)
		}
	case "demo-backend":
		err = runDemoBackend(args)
	case "version":
		fmt.Println("causeway", version)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "causeway: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "causeway:", err)
		os.Exit(1)
	}
}
