// Package testbin is shared by the end-to-end test packages (test/e2e,
// test/grpc, test/controlplane): it builds the causeway binary once per
// test package and holds the small helpers every harness needs.
package testbin

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Main builds cmd/causeway into a temporary directory, stores its path in
// *binary, runs the tests and exits with their status. Call it from
// TestMain.
func Main(m *testing.M, binary *string) {
	dir, err := os.MkdirTemp("", "causeway-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = filepath.Join(dir, "causeway")
	// The release build's settings (build.sh), so that the tests run what
	// ships.
	build := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-o", *binary, "causeway.dev/causeway/cmd/causeway")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building causeway:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// FreePort returns a TCP port that was free on ip a moment ago.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Buffer collects a process's output, safely for concurrent writers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// GatewayClassYAML is the GatewayClass causeway, of Causeway's controller.
const GatewayClassYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: causeway}
spec: {controllerName: causeway.dev/gateway-controller}
`

// GatewayYAML returns GatewayClassYAML and the head of a Gateway called
// name of that class on 127.0.0.1. The caller appends the rest of the
// Gateway's spec (its listeners, at least), indented by two spaces.
func GatewayYAML(name string) string {
	return GatewayClassYAML + `---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ` + name + `}
spec:
  gatewayClassName: causeway
  addresses: [{type: IPAddress, value: 127.0.0.1}]
`
}
