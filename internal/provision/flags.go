package provision

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"k8s.io/client-go/rest"
)

// Flags are the command-line settings of `causeway controller`'s
// provisioning.
type Flags struct {
	Mode, Image, ControlAddress, ControlCA, ControlToken, ServiceType, PodIPs string
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Mode, "provision", string(InProcess), "what to create per Gateway: inprocess (a headless Service and EndpointSlices for the Gateways this process serves), deployment (a `causeway proxy` Deployment and its Service, connected to --control-address), off")
	fs.StringVar(&f.Image, "proxy-image", "ghcr.io/causeway-dev/causeway:latest", "image of the provisioned proxies (deployment)")
	fs.StringVar(&f.ControlAddress, "control-address", "", "host:port of `causeway control`'s stream, the proxies' --control (deployment)")
	fs.StringVar(&f.ControlCA, "control-ca", "", "PEM file of the CA the proxies trust for the control plane, their --ca (deployment)")
	fs.StringVar(&f.ControlToken, "control-token-file", "", "file holding the proxies' bootstrap token (deployment)")
	fs.StringVar(&f.ServiceType, "service-type", "LoadBalancer", "type of the proxies' Services: LoadBalancer or ClusterIP (deployment)")
	fs.StringVar(&f.PodIPs, "pod-ips", os.Getenv("POD_IPS"), "comma-separated IPs published for Gateways bound on all interfaces (inprocess); default $POD_IPS")
}

// Provisioner builds the Provisioner the flags describe.
func (f *Flags) Provisioner(cfg *rest.Config, log *slog.Logger) (*Provisioner, error) {
	o := Options{Config: cfg, Mode: Mode(f.Mode), Image: f.Image, ControlAddress: f.ControlAddress,
		ServiceType: f.ServiceType, Logger: log}
	if o.Mode == Deployment {
		var err error
		if f.ControlCA != "" {
			if o.ControlCA, err = os.ReadFile(f.ControlCA); err != nil {
				return nil, fmt.Errorf("--control-ca: %w", err)
			}
		}
		if f.ControlToken != "" {
			b, err := os.ReadFile(f.ControlToken)
			if err != nil {
				return nil, fmt.Errorf("--control-token-file: %w", err)
			}
			o.ControlToken = strings.TrimSpace(string(b))
		}
	}
	for _, ip := range strings.Split(f.PodIPs, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			o.PodIPs = append(o.PodIPs, ip)
		}
	}
	return New(o)
}
