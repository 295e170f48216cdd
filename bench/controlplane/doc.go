// Package controlplane benchmarks the push protocol at fleet scale: a
// control plane (internal/push, run as a child process so that its CPU and
// memory are its own) and N simulated proxies (internal/agent, goroutines
// in this process) speaking the real protocol over loopback TLS.
//
//	go test ./bench/controlplane -run '^$' -bench . -benchtime 20x
//	go test ./bench/controlplane -run '^$' -bench . -benchtime 20x -proxies 100,1000,5000
package controlplane
