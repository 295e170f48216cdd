// Package controlplane tests `causeway control` and `causeway proxy` as
// real processes: one control plane streaming to three proxies on their
// own loopback addresses, route changes, refusals (NACK), and the control
// plane killed under load.
package controlplane
