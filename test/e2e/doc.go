// Package e2e runs the causeway binary as a user would: real processes, real
// sockets, real clients (net/http, curl). Each test writes its own
// configuration directory and starts its backends on loopback.
package e2e
