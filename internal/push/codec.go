// Package push is the control-plane side of the stream to remote proxies:
// the translator's IR comes in (Server.Update), is cut into per-listener and
// per-cluster resources, filtered per proxy to the Gateways it serves, and
// streamed over gRPC with xDS's versions, nonces and ACK/NACK (see
// api/push/v1alpha1/push.proto). The proxy side is internal/agent, which
// decodes the same resources with DecodeListener and DecodeCluster.
//
// Who may serve what: a proxy is authorised by its client certificate
// (CertGateways: spiffe://TD/gateway/NS/NAME URI SANs or
// NAME.NS.gateway.TD DNS SANs) or by a bootstrap token (Tokens), and
// receives only the listeners of its Gateways, the clusters they use, and
// of a socket shared with other Gateways only its own Gateways'
// certificates (Owners). Back from the fleet: the status table (Status)
// and each Gateway's Programmed condition (Fleet, MarkProgrammed,
// Reporter), which follows what its proxies acknowledged.
package push

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
)

// Resource name prefixes: a resource's name is the prefix and the IR name.
const (
	ListenerPrefix = "listener/"
	ClusterPrefix  = "cluster/"
)

// EncodeListener turns a listener into a resource: JSON plus the key
// material that JSON omits. The result is immutable and may be shared by
// every stream.
func EncodeListener(l *ir.Listener) (*pb.Resource, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", l.Name, err)
	}
	var s *pb.Secrets
	if t := l.TLS; t != nil {
		s = &pb.Secrets{}
		for _, c := range t.Certificates {
			if c == nil {
				s.Certificates = append(s.Certificates, &pb.CertificateKey{})
				continue
			}
			s.Certificates = append(s.Certificates, &pb.CertificateKey{CertPem: c.CertPEM, KeyPem: c.KeyPEM})
		}
		if t.ClientValidation != nil {
			s.ClientCaPem = t.ClientValidation.CACertPEM
		}
	}
	return &pb.Resource{Name: ListenerPrefix + l.Name, Kind: pb.Kind_KIND_LISTENER,
		Version: contentVersion(b, s), Json: b, Secrets: s}, nil
}

// EncodeCluster is EncodeListener for a cluster.
func EncodeCluster(c *ir.Cluster) (*pb.Resource, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	var s *pb.Secrets
	if t := c.TLS; t != nil {
		s = &pb.Secrets{UpstreamCaPem: t.CACertPEM, UpstreamClientCertPem: t.ClientCertPEM,
			UpstreamClientKeyPem: t.ClientKeyPEM}
	}
	return &pb.Resource{Name: ClusterPrefix + c.Name, Kind: pb.Kind_KIND_CLUSTER,
		Version: contentVersion(b, s), Json: b, Secrets: s}, nil
}

// DecodeListener is the inverse of EncodeListener.
func DecodeListener(r *pb.Resource) (*ir.Listener, error) {
	if r.GetKind() != pb.Kind_KIND_LISTENER {
		return nil, fmt.Errorf("resource %s: kind %v is not a listener", r.GetName(), r.GetKind())
	}
	var l ir.Listener
	if err := json.Unmarshal(r.GetJson(), &l); err != nil {
		return nil, fmt.Errorf("resource %s: %w", r.GetName(), err)
	}
	s := r.GetSecrets()
	if l.TLS != nil && s != nil {
		if len(s.Certificates) != len(l.TLS.Certificates) {
			return nil, fmt.Errorf("resource %s: %d certificates but %d keys", r.GetName(),
				len(l.TLS.Certificates), len(s.Certificates))
		}
		for i, c := range l.TLS.Certificates {
			if c != nil {
				c.CertPEM, c.KeyPEM = s.Certificates[i].GetCertPem(), s.Certificates[i].GetKeyPem()
			}
		}
		if l.TLS.ClientValidation != nil {
			l.TLS.ClientValidation.CACertPEM = s.ClientCaPem
		}
	}
	return &l, nil
}

// DecodeCluster is the inverse of EncodeCluster.
func DecodeCluster(r *pb.Resource) (*ir.Cluster, error) {
	if r.GetKind() != pb.Kind_KIND_CLUSTER {
		return nil, fmt.Errorf("resource %s: kind %v is not a cluster", r.GetName(), r.GetKind())
	}
	var c ir.Cluster
	if err := json.Unmarshal(r.GetJson(), &c); err != nil {
		return nil, fmt.Errorf("resource %s: %w", r.GetName(), err)
	}
	if s := r.GetSecrets(); c.TLS != nil && s != nil {
		c.TLS.CACertPEM, c.TLS.ClientCertPEM, c.TLS.ClientKeyPEM =
			s.UpstreamCaPem, s.UpstreamClientCertPem, s.UpstreamClientKeyPem
	}
	return &c, nil
}

// contentVersion hashes the JSON and every secret, each length-prefixed so
// that moving bytes between fields changes the version.
func contentVersion(b []byte, s *pb.Secrets) string {
	h := sha256.New()
	put := func(p []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	put(b)
	if s != nil {
		for _, c := range s.Certificates {
			put(c.CertPem)
			put(c.KeyPem)
		}
		put(s.ClientCaPem)
		put(s.UpstreamCaPem)
		put(s.UpstreamClientCertPem)
		put(s.UpstreamClientKeyPem)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
