// Command podlogs serves the kubelet's containerLogs API for the conformance
// test bed (../../../../shared/k8s-testbed), whose fake kubelet runs pods as
// plain processes and serves no API of its own.
//
// The conformance suite's request-mirror tests read the mirror backend's
// pod log (pods/log), which the apiserver proxies to the Node's kubelet at
// https://<node address>:10250/containerLogs/<namespace>/<pod>/<container>.
// podlogs listens there, on the Node's InternalIP, with a self-signed
// certificate (the bed's apiserver does not verify kubelet certificates),
// looks the pod's UID up in the API and serves
// <pods dir>/<uid>/<container>.log, where the fake kubelet writes the
// container's stdout and stderr. It honours tailLines, sinceTime,
// sinceSeconds, timestamps, limitBytes and follow. The line times behind
// sinceTime and timestamps are those at which podlogs saw the lines appear
// (see index), so it should run from before the traffic it is asked about.
//
// It authenticates nobody: it listens on the bed's bridge only, where the
// apiserver and the bed's own pods are the only clients.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	bed := os.Getenv("BED")
	if bed == "" {
		bed = "/tmp/k8sbed"
	}
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the bed's apiserver")
	node := flag.String("node", "bed-node", "the fake kubelet's Node")
	listen := flag.String("listen", "", "address to serve on; \"\" means the Node's InternalIP, port 10250")
	podsDir := flag.String("pods-dir", filepath.Join(bed, "pods"), "the fake kubelet's state dir (<uid>/<container>.log)")
	poll := flag.Duration("poll", 100*time.Millisecond, "how often log files are checked for new lines")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if err := run(*kubeconfig, *node, *listen, *podsDir, *poll); err != nil {
		log.Fatalf("podlogs: %v", err)
	}
}

func run(kubeconfig, node, listen, podsDir string, poll time.Duration) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	host := node
	if listen == "" {
		n, err := dyn.Resource(nodesGVR).Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
		ip, err := internalIP(n)
		if err != nil {
			return err
		}
		listen = net.JoinHostPort(ip, "10250")
	}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		host = h
	}
	cert, err := selfSigned(node, host)
	if err != nil {
		return err
	}

	x := newIndex(podsDir)
	go x.run(ctx, poll)
	srv := &http.Server{
		Handler:           newHandler(x, apiPods(dyn), podsDir, poll),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Printf("podlogs ready: https://%s, logs from %s", ln.Addr(), podsDir)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // follow streams end with ctx
	log.Printf("podlogs stopped")
	return nil
}

var (
	nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	podsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

func internalIP(n *unstructured.Unstructured) (string, error) {
	addrs, _, _ := unstructured.NestedSlice(n.Object, "status", "addresses")
	for _, a := range addrs {
		m, _ := a.(map[string]any)
		if m["type"] == "InternalIP" {
			if s, _ := m["address"].(string); s != "" {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("node %s has no InternalIP", n.GetName())
}

// errNotFound marks a pod or container that does not exist.
var errNotFound = errors.New("not found")

// podUIDFunc returns the UID of pod namespace/name if it has the container.
type podUIDFunc func(ctx context.Context, namespace, name, container string) (string, error)

func apiPods(dyn dynamic.Interface) podUIDFunc {
	return func(ctx context.Context, namespace, name, container string) (string, error) {
		p, err := dyn.Resource(podsGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("pod %s/%s: %w", namespace, name, errNotFound)
		}
		if err != nil {
			return "", err
		}
		cs, _, _ := unstructured.NestedSlice(p.Object, "spec", "containers")
		if !slices.ContainsFunc(cs, func(c any) bool {
			m, _ := c.(map[string]any)
			return m["name"] == container
		}) {
			return "", fmt.Errorf("container %s in pod %s/%s: %w", container, namespace, name, errNotFound)
		}
		return string(p.GetUID()), nil
	}
}

// newHandler serves GET /containerLogs/{namespace}/{pod}/{container} and
// /healthz.
func newHandler(x *index, uid podUIDFunc, podsDir string, poll time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		opts, err := parseOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ns, pod, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
		id, err := uid(r.Context(), ns, pod, ctr)
		if errors.Is(err, errNotFound) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		path := filepath.Join(podsDir, id, ctr+".log")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// A container the fake kubelet does not run (not echo-basic)
			// has written nothing.
			w.Header().Set("Content-Type", "text/plain")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		if err := x.serveLog(r.Context(), w, path, opts, poll); err != nil {
			log.Printf("%s/%s/%s: %v", ns, pod, ctr, err)
		}
	})
	return mux
}

// parseOptions reads the query parameters the apiserver passes on from
// PodLogOptions.
func parseOptions(r *http.Request) (logOptions, error) {
	q := r.URL.Query()
	opts := logOptions{tail: -1}
	var err error
	boolParam := func(name string) bool {
		if err != nil || !q.Has(name) {
			return false
		}
		var v bool
		if v, err = strconv.ParseBool(q.Get(name)); err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return v
	}
	intParam := func(name string, def int64) int64 {
		if err != nil || !q.Has(name) {
			return def
		}
		var v int64
		if v, err = strconv.ParseInt(q.Get(name), 10, 64); err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return v
	}
	opts.follow = boolParam("follow")
	opts.timestamps = boolParam("timestamps")
	previous := boolParam("previous")
	opts.tail = intParam("tailLines", -1)
	opts.limit = intParam("limitBytes", 0)
	sinceSeconds := intParam("sinceSeconds", 0)
	if err != nil {
		return opts, err
	}
	if previous {
		return opts, errors.New("previous: the test bed does not restart containers")
	}
	if s := q.Get("stream"); s != "" && s != "All" {
		return opts, fmt.Errorf("stream %s: the test bed's logs mix stdout and stderr", s)
	}
	switch {
	case q.Has("sinceTime"):
		if opts.since, err = time.Parse(time.RFC3339, q.Get("sinceTime")); err != nil {
			return opts, fmt.Errorf("sinceTime: %w", err)
		}
	case sinceSeconds > 0:
		opts.since = time.Now().Add(-time.Duration(sinceSeconds) * time.Second)
	}
	return opts, nil
}

// selfSigned makes a certificate for the node's name and listen host.
func selfSigned(node, host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: node},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{node},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
