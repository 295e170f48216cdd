package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"causeway.dev/causeway/internal/push"
)

// runCtl runs an operator command against a running control plane.
func runCtl(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "proxy-status" {
		return errors.New("ctl: usage: causeway ctl proxy-status [--control-admin ADDR]")
	}
	fs := flag.NewFlagSet("ctl proxy-status", flag.ExitOnError)
	addr := fs.String("control-admin", "127.0.0.1:9902", "the control plane's admin address")
	_ = fs.Parse(args[1:])
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + *addr + "/proxies")
	if err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ctl: %s/proxies: %s", *addr, resp.Status)
	}
	var rep push.StatusReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return fmt.Errorf("ctl: decoding status: %w", err)
	}
	return printProxyStatus(out, rep)
}

func printProxyStatus(out io.Writer, rep push.StatusReport) error {
	fmt.Fprintf(out, "control plane configuration %s, %d proxies\n", orDash(rep.Version), len(rep.Proxies))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tGATEWAYS\tIDENTITY\tACKED\tDESIRED\tSYNC\tLAST NACK")
	for _, p := range rep.Proxies {
		sync := "SYNCED"
		switch {
		case p.LastNack != nil:
			sync = "NACKED"
		case p.Pending || p.AckedVersion != p.DesiredVersion:
			sync = "STALE"
		}
		nack := "-"
		if p.LastNack != nil {
			nack = p.LastNack.Version + ": " + strings.ReplaceAll(p.LastNack.Message, "\n", " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Role, strings.Join(p.Gateways, ","),
			orDash(strings.Fields(p.Identity + " -")[0]), orDash(p.AckedVersion), orDash(p.DesiredVersion), sync, nack)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
