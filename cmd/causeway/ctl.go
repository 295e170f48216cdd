package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"causeway.dev/causeway/internal/push"
)

// runCtl runs an operator command against running control planes.
func runCtl(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "proxy-status" {
		return errors.New("ctl: usage: causeway ctl proxy-status [--control-admin ADDR[,ADDR...]]")
	}
	fs := flag.NewFlagSet("ctl proxy-status", flag.ExitOnError)
	addrs := fs.String("control-admin", "127.0.0.1:9902", "the control plane's admin address; several replicas' (comma-separated): their tables merged")
	_ = fs.Parse(args[1:])
	list := splitList(*addrs)
	if len(list) == 0 {
		return errors.New("ctl: --control-admin: no address")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	reps := make([]push.StatusReport, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, a := range list {
		wg.Go(func() { reps[i], errs[i] = fetchProxyStatus(c, a) })
	}
	wg.Wait()
	if len(list) == 1 {
		if errs[0] != nil {
			return errs[0]
		}
		return printProxyStatus(out, reps[0], false)
	}
	// Several replicas: every proxy, with the replica it is connected
	// to; the replicas that did not answer are named, and fail the
	// command, after the table of those that did.
	var ok []push.StatusReport
	for i, r := range reps {
		if errs[i] != nil {
			continue
		}
		for j := range r.Proxies {
			r.Proxies[j].Control = list[i]
		}
		ok = append(ok, r)
	}
	if len(ok) > 0 {
		if err := printProxyStatus(out, push.MergeStatus(ok...), true); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// fetchProxyStatus reads the proxy table of the control plane at addr.
func fetchProxyStatus(c *http.Client, addr string) (push.StatusReport, error) {
	var rep push.StatusReport
	resp, err := c.Get("http://" + addr + "/proxies")
	if err != nil {
		return rep, fmt.Errorf("ctl: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("ctl: %s/proxies: %s", addr, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("ctl: %s: decoding status: %w", addr, err)
	}
	return rep, nil
}

// printProxyStatus prints the table; merged adds the CONTROL column (the
// replica each proxy is connected to).
func printProxyStatus(out io.Writer, rep push.StatusReport, merged bool) error {
	ver := orDash(rep.Version)
	if merged && rep.Version == "" {
		ver = "(replicas differ)"
	}
	fmt.Fprintf(out, "control plane configuration %s, %d proxies\n", ver, len(rep.Proxies))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "ID\tROLE\tGATEWAYS\tIDENTITY\tACKED\tDESIRED\tSYNC\tLAST NACK"
	if merged {
		head = "ID\tCONTROL\tROLE\tGATEWAYS\tIDENTITY\tACKED\tDESIRED\tSYNC\tLAST NACK"
	}
	fmt.Fprintln(tw, head)
	for _, p := range rep.Proxies {
		state := "SYNCED"
		switch {
		case p.LastNack != nil:
			state = "NACKED"
		case p.Pending || p.AckedVersion != p.DesiredVersion:
			state = "STALE"
		}
		nack := "-"
		if p.LastNack != nil {
			nack = p.LastNack.Version + ": " + strings.ReplaceAll(p.LastNack.Message, "\n", " ")
		}
		id := p.ID
		if merged {
			id += "\t" + p.Control
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, p.Role, strings.Join(p.Gateways, ","),
			orDash(strings.Fields(p.Identity + " -")[0]), orDash(p.AckedVersion), orDash(p.DesiredVersion), state, nack)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
