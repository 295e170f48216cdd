package leader

import (
	"flag"
	"log/slog"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Flags are the command-line settings of the election.
type Flags struct {
	// Elect enables the election; off, the replica acts as leader alone.
	Elect bool
	// Namespace of the Lease; "" means $POD_NAMESPACE, else the
	// namespace of the pod's service account, else "default".
	Namespace string
	// Name, LeaseDuration, RenewDeadline, RetryPeriod: see Config.
	Name                                      string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Register defines the flags on fs. The election is on by default, even
// for one replica: a lone replica acquires the Lease at once (at startup
// the previous one released it; after a crash it waits out the lease
// duration before writing status), and a second replica added later then
// cannot write status concurrently. --leader-elect=false is for running
// without RBAC on Leases, with certainly one replica.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.BoolVar(&f.Elect, "leader-elect", true, "elect one leader among the replicas with a Lease; only the leader writes status, every replica serves")
	fs.StringVar(&f.Namespace, "leader-election-namespace", "", "namespace of the Lease; \"\" means $POD_NAMESPACE, the pod's namespace, or default")
	fs.StringVar(&f.Name, "leader-election-id", "causeway-controller", "name of the Lease; replicas sharing it elect one leader")
	fs.DurationVar(&f.LeaseDuration, "leader-lease-duration", 15*time.Second, "how long followers wait after the last renewal before taking over")
	fs.DurationVar(&f.RenewDeadline, "leader-renew-deadline", 10*time.Second, "how long the leader retries renewing before stepping down")
	fs.DurationVar(&f.RetryPeriod, "leader-retry-period", 2*time.Second, "interval between attempts to acquire or renew")
}

// saNamespace is where a pod finds its own namespace.
const saNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Elector returns an Elector configured by f, or nil when the election is
// off.
func (f *Flags) Elector(cfg *rest.Config, log *slog.Logger) (*Elector, error) {
	if !f.Elect {
		return nil, nil
	}
	ns := f.Namespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		if b, err := os.ReadFile(saNamespace); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		ns = "default"
	}
	return New(Config{Config: cfg, Namespace: ns, Name: f.Name, LeaseDuration: f.LeaseDuration,
		RenewDeadline: f.RenewDeadline, RetryPeriod: f.RetryPeriod, Logger: log})
}
