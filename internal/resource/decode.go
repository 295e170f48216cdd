package resource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/status"
)

const gatewayGroup = "gateway.networking.k8s.io"

// IsConfigFile reports whether name is read as configuration.
func IsConfigFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return (ext == ".yaml" || ext == ".yml") && !strings.HasPrefix(filepath.Base(name), ".")
}

// Load reads every *.yaml and *.yml file under dir (subfolders included,
// files in lexical path order) into a new Snapshot. Only I/O errors on dir
// itself are returned; problems with single files or documents are recorded
// in Snapshot.Problems.
func Load(dir string) (*Snapshot, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && IsConfigFile(path) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading config dir: %w", err)
	}
	sort.Strings(files)
	s := New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			s.Problems = append(s.Problems, Problem{Source: status.Source{File: f}, Message: err.Error()})
			continue
		}
		s.Decode(f, data)
	}
	return s, nil
}

// New returns an empty Snapshot ready for Decode.
func New() *Snapshot { return &Snapshot{Sources: make(map[status.Ref]status.Source)} }

// Decode adds the resources of one file's YAML documents to s. Documents
// that cannot be decoded, kinds that are not known, and duplicates are
// recorded in s.Problems; the rest of the file is still taken.
func (s *Snapshot) Decode(file string, data []byte) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		src := status.Source{File: file, Doc: doc}
		if err != nil {
			s.Problems = append(s.Problems, Problem{Source: src, Message: "reading YAML: " + err.Error()})
			return
		}
		if len(bytes.TrimSpace(raw)) == 0 || isOnlyComments(raw) {
			doc--
			continue
		}
		if err := s.decodeDoc(src, raw); err != nil {
			s.Problems = append(s.Problems, *err)
		}
	}
}

func isOnlyComments(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}

func (s *Snapshot) decodeDoc(src status.Source, raw []byte) *Problem {
	var tm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return &Problem{Source: src, Message: "decoding YAML: " + err.Error()}
	}
	ref := status.Ref{Kind: tm.Kind, Namespace: tm.Metadata.Namespace, Name: tm.Metadata.Name}
	if ref.Namespace == "" && tm.Kind != "Namespace" && tm.Kind != "GatewayClass" {
		ref.Namespace = "default"
	}
	if tm.Kind == "Namespace" || tm.Kind == "GatewayClass" {
		ref.Namespace = ""
	}
	fail := func(msg string) *Problem { return &Problem{Source: src, Ref: ref, Message: msg} }
	if tm.Kind == "" || tm.APIVersion == "" {
		return fail("apiVersion and kind are required")
	}
	group, version := splitAPIVersion(tm.APIVersion)
	if tm.Metadata.Name == "" {
		return fail("metadata.name is required")
	}
	var obj metav1.Object
	switch {
	case group == gatewayGroup && isL4Route(tm.Kind, version):
		obj = s.addL4Route(tm.Kind)
	case group == gatewayGroup && (version == "v1" || version == "v1beta1"):
		switch tm.Kind {
		case "GatewayClass":
			o := &gwv1.GatewayClass{}
			obj = o
			s.GatewayClasses = append(s.GatewayClasses, o)
		case "Gateway":
			o := &gwv1.Gateway{}
			obj = o
			s.Gateways = append(s.Gateways, o)
		case "ListenerSet":
			if version == "v1" {
				o := &gwv1.ListenerSet{}
				obj = o
				s.ListenerSets = append(s.ListenerSets, o)
			}
		case "HTTPRoute":
			o := &gwv1.HTTPRoute{}
			obj = o
			s.HTTPRoutes = append(s.HTTPRoutes, o)
		case "GRPCRoute":
			o := &gwv1.GRPCRoute{}
			obj = o
			s.GRPCRoutes = append(s.GRPCRoutes, o)
		case "ReferenceGrant":
			o := &gwv1.ReferenceGrant{}
			obj = o
			s.ReferenceGrants = append(s.ReferenceGrants, o)
		case "BackendTLSPolicy":
			if version == "v1" {
				o := &gwv1.BackendTLSPolicy{}
				obj = o
				s.BackendTLSPolicies = append(s.BackendTLSPolicies, o)
			}
		}
	case group == "" && version == "v1":
		switch tm.Kind {
		case "Service":
			o := &corev1.Service{}
			obj = o
			s.Services = append(s.Services, o)
		case "Secret":
			o := &corev1.Secret{}
			obj = o
			s.Secrets = append(s.Secrets, o)
		case "Namespace":
			o := &corev1.Namespace{}
			obj = o
			s.Namespaces = append(s.Namespaces, o)
		case "ConfigMap":
			o := &corev1.ConfigMap{}
			obj = o
			s.ConfigMaps = append(s.ConfigMaps, o)
		}
	case group == "discovery.k8s.io" && version == "v1" && tm.Kind == "EndpointSlice":
		o := &discoveryv1.EndpointSlice{}
		obj = o
		s.EndpointSlices = append(s.EndpointSlices, o)
	case group == v1alpha1.Group && version == v1alpha1.Version && tm.Kind == "Backend":
		o := &v1alpha1.Backend{}
		obj = o
		s.Backends = append(s.Backends, o)
	case group == v1alpha1.Group && version == v1alpha1.Version && tm.Kind == "BackendTrafficPolicy":
		o := &v1alpha1.BackendTrafficPolicy{}
		obj = o
		s.BackendTrafficPolicies = append(s.BackendTrafficPolicies, o)
	case group == v1alpha1.Group && version == v1alpha1.Version && tm.Kind == "ClientTrafficPolicy":
		o := &v1alpha1.ClientTrafficPolicy{}
		obj = o
		s.ClientTrafficPolicies = append(s.ClientTrafficPolicies, o)
	}
	if obj == nil {
		return fail(fmt.Sprintf("kind %s of apiVersion %s is not supported; ignored", tm.Kind, tm.APIVersion))
	}
	if prev, dup := s.Sources[ref]; dup {
		s.drop(ref.Kind)
		return fail(fmt.Sprintf("duplicate: %s is already defined at %s; this copy is ignored", ref, prev))
	}
	if err := decodeStrict(raw, obj); err != nil {
		s.drop(ref.Kind)
		return fail("decoding " + ref.Kind + ": " + err.Error())
	}
	obj.SetNamespace(ref.Namespace)
	s.Sources[ref] = src
	return nil
}

// drop removes the last appended object of kind, after a decode failure.
func (s *Snapshot) drop(kind string) {
	switch kind {
	case "GatewayClass":
		s.GatewayClasses = s.GatewayClasses[:len(s.GatewayClasses)-1]
	case "Gateway":
		s.Gateways = s.Gateways[:len(s.Gateways)-1]
	case "ListenerSet":
		s.ListenerSets = s.ListenerSets[:len(s.ListenerSets)-1]
	case "HTTPRoute":
		s.HTTPRoutes = s.HTTPRoutes[:len(s.HTTPRoutes)-1]
	case "GRPCRoute":
		s.GRPCRoutes = s.GRPCRoutes[:len(s.GRPCRoutes)-1]
	case "ReferenceGrant":
		s.ReferenceGrants = s.ReferenceGrants[:len(s.ReferenceGrants)-1]
	case "TLSRoute":
		s.TLSRoutes = s.TLSRoutes[:len(s.TLSRoutes)-1]
	case "TCPRoute":
		s.TCPRoutes = s.TCPRoutes[:len(s.TCPRoutes)-1]
	case "UDPRoute":
		s.UDPRoutes = s.UDPRoutes[:len(s.UDPRoutes)-1]
	case "Service":
		s.Services = s.Services[:len(s.Services)-1]
	case "Secret":
		s.Secrets = s.Secrets[:len(s.Secrets)-1]
	case "Namespace":
		s.Namespaces = s.Namespaces[:len(s.Namespaces)-1]
	case "EndpointSlice":
		s.EndpointSlices = s.EndpointSlices[:len(s.EndpointSlices)-1]
	case "Backend":
		s.Backends = s.Backends[:len(s.Backends)-1]
	case "BackendTrafficPolicy":
		s.BackendTrafficPolicies = s.BackendTrafficPolicies[:len(s.BackendTrafficPolicies)-1]
	case "ConfigMap":
		s.ConfigMaps = s.ConfigMaps[:len(s.ConfigMaps)-1]
	case "ClientTrafficPolicy":
		s.ClientTrafficPolicies = s.ClientTrafficPolicies[:len(s.ClientTrafficPolicies)-1]
	case "BackendTLSPolicy":
		s.BackendTLSPolicies = s.BackendTLSPolicies[:len(s.BackendTLSPolicies)-1]
	}
}

// isL4Route reports whether kind is a TLSRoute, TCPRoute or UDPRoute of a
// version Gateway API v1.6 defines (v1, and the deprecated v1alpha2, plus
// v1alpha3 for TLSRoute): their fields are the same, all decode as v1.
func isL4Route(kind, version string) bool {
	switch kind {
	case "TLSRoute":
		return version == "v1" || version == "v1alpha2" || version == "v1alpha3"
	case "TCPRoute", "UDPRoute":
		return version == "v1" || version == "v1alpha2"
	}
	return false
}

// addL4Route appends a new, empty route of kind to s and returns it.
func (s *Snapshot) addL4Route(kind string) metav1.Object {
	switch kind {
	case "TLSRoute":
		o := &gwv1.TLSRoute{}
		s.TLSRoutes = append(s.TLSRoutes, o)
		return o
	case "TCPRoute":
		o := &gwv1.TCPRoute{}
		s.TCPRoutes = append(s.TCPRoutes, o)
		return o
	}
	o := &gwv1.UDPRoute{}
	s.UDPRoutes = append(s.UDPRoutes, o)
	return o
}

func splitAPIVersion(av string) (group, version string) {
	if i := strings.LastIndexByte(av, '/'); i >= 0 {
		return av[:i], av[i+1:]
	}
	return "", av
}

// decodeStrict decodes a YAML document into obj, refusing unknown and
// duplicate fields with errors that carry the field's full path
// ("unknown field \"spec.rulez\""), as kubectl reports them.
func decodeStrict(raw []byte, obj any) error {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(js, obj)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}
