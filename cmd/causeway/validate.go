package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
)

// runValidate translates DIR as the gateway would and prints the status of
// every resource. ok is false when any resource has a problem.
func runValidate(args []string, out io.Writer) (ok bool, err error) {
	fs := flag.NewFlagSet("validate", flag.ExitOnError)
	asJSON := fs.Bool("json", false, "print the full status report as JSON")
	explain := fs.Bool("explain", false, "also print, for each route, the effective resilience settings and the resource and field each came from")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return false, fmt.Errorf("validate: want one directory, got %d arguments", fs.NArg())
	}
	snap, err := resource.Load(fs.Arg(0))
	if err != nil {
		return false, err
	}
	cfg, report := translate.Translate(snap, translate.Options{})
	problems := report.Problems()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if *explain {
			return len(problems) == 0, enc.Encode(struct {
				*status.Report
				Explain []translate.Explanation `json:"explain"`
			}{report, translate.Explain(cfg)})
		}
		return len(problems) == 0, enc.Encode(report)
	}
	printReport(out, report, problems)
	if *explain {
		fmt.Fprintln(out)
		for _, e := range translate.Explain(cfg) {
			fmt.Fprintln(out, e.String())
		}
	}
	return len(problems) == 0, nil
}

func printReport(out io.Writer, r *status.Report, problems []status.Problem) {
	bad := map[status.Ref]bool{}
	for _, p := range problems {
		bad[p.Ref] = true
	}
	for _, e := range r.Resources {
		if bad[e.Ref] {
			continue
		}
		line := "ok      " + e.Ref.String()
		if s := e.Source.String(); s != "" {
			line += "  (" + s + ")"
		}
		if n := note(e); n != "" {
			line += "  " + n
		}
		fmt.Fprintln(out, line)
	}
	for _, p := range problems {
		fmt.Fprintln(out, "INVALID "+p.Error())
	}
	fmt.Fprintf(out, "\n%d resources, %d problems\n", len(r.Resources), len(problems))
}

// note surfaces informational conditions, e.g. a Gateway of another controller.
func note(e *status.Resource) string {
	var parts []string
	for _, c := range e.Conditions {
		if c.Status && c.Type != status.Accepted && c.Type != status.ResolvedRefs && c.Type != status.Programmed {
			parts = append(parts, c.Message)
		}
	}
	return strings.Join(parts, "; ")
}
