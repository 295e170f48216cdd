package provision

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// Labels and annotations Causeway puts on what it provisions.
const (
	// LabelProvisioner marks the objects of one provisioner (Options.Instance):
	// the set it lists, compares and deletes. Nothing else is ever touched.
	LabelProvisioner = "causeway.dev/provisioner"
	// LabelProxy selects the pods of one Gateway's proxy Deployment.
	LabelProxy = "causeway.dev/proxy"
	// AnnotationHash holds the hash of the applied desired state: an object
	// is applied again only when it differs.
	AnnotationHash = "causeway.dev/provision-hash"
	// AnnotationGateway names the Gateway ("namespace/name") of an object.
	AnnotationGateway = "causeway.dev/gateway"
)

// Gateway is what provisioning needs of one accepted Gateway.
type Gateway struct {
	Namespace, Name string
	// UID of the Gateway, for owner references; "" sets none.
	UID string
	// Ports are the listeners' distinct ports, sorted.
	Ports []Port
	// Labels and Annotations are spec.infrastructure's.
	Labels, Annotations map[string]string
	// Addresses are the IPs the Gateway is bound to in process: its
	// spec.addresses, or the one given from the pool; "" stands for all
	// interfaces.
	Addresses []string
}

// Port is one listening port of a Gateway.
type Port struct {
	Port int32
	// Protocol is the transport: "TCP" or "UDP".
	Protocol string
}

// Name is the port's name in Services and EndpointSlices, e.g. "tcp-443":
// listener names may be longer than a port name's 15 characters, and
// listeners sharing a port share one Service port.
func (p Port) Name() string { return strings.ToLower(p.Protocol) + "-" + strconv.Itoa(int(p.Port)) }

// Gateways returns the Gateways of snap that the report accepts (so ours:
// a Gateway of another controller is never Accepted here), sorted by
// namespace and name. addrs gives the pool address of a Gateway without
// spec.addresses, as for the status writer; nil means none.
func Gateways(snap *resource.Snapshot, rep *status.Report, addrs func(*gwv1.Gateway) []string) []Gateway {
	accepted := map[string]bool{}
	for _, r := range rep.Resources {
		if r.Ref.Kind != "Gateway" {
			continue
		}
		for _, c := range r.Conditions {
			if c.Type == status.Accepted && c.Status {
				accepted[r.Ref.Namespace+"/"+r.Ref.Name] = true
			}
		}
	}
	var out []Gateway
	for _, gw := range snap.Gateways {
		if !accepted[gw.Namespace+"/"+gw.Name] {
			continue
		}
		g := Gateway{Namespace: gw.Namespace, Name: gw.Name, UID: string(gw.UID)}
		seen := map[Port]bool{}
		for _, l := range gw.Spec.Listeners {
			p := Port{Port: int32(l.Port), Protocol: "TCP"}
			if l.Protocol == gwv1.UDPProtocolType {
				p.Protocol = "UDP"
			}
			if p.Port >= 1 && p.Port <= 65535 && !seen[p] {
				seen[p] = true
				g.Ports = append(g.Ports, p)
			}
		}
		sort.Slice(g.Ports, func(i, j int) bool {
			a, b := g.Ports[i], g.Ports[j]
			return a.Port < b.Port || a.Port == b.Port && a.Protocol < b.Protocol
		})
		if inf := gw.Spec.Infrastructure; inf != nil {
			for k, v := range inf.Labels {
				if g.Labels == nil {
					g.Labels = map[string]string{}
				}
				g.Labels[string(k)] = string(v)
			}
			for k, v := range inf.Annotations {
				if g.Annotations == nil {
					g.Annotations = map[string]string{}
				}
				g.Annotations[string(k)] = string(v)
			}
		}
		for _, a := range gw.Spec.Addresses {
			if a.Type == nil || *a.Type == gwv1.IPAddressType {
				g.Addresses = append(g.Addresses, a.Value)
			}
		}
		if len(gw.Spec.Addresses) == 0 && addrs != nil {
			g.Addresses = addrs(gw)
		}
		if len(g.Addresses) == 0 {
			g.Addresses = []string{""}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace < out[j].Namespace || out[i].Namespace == out[j].Namespace && out[i].Name < out[j].Name
	})
	return out
}

var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// ObjectName is the name of the objects provisioned for Gateway name: a
// DNS-1035 label (Services need one) of at most 63 characters,
// "NAME-causeway" when that is one, else a shortened name and a hash.
func ObjectName(name string) string {
	n := name + "-causeway"
	if len(n) <= 63 && dns1035.MatchString(n) {
		return n
	}
	sum := sha256.Sum256([]byte(name))
	short := strings.Trim(name[:min(len(name), 40)], "-.")
	short = strings.ReplaceAll(short, ".", "-")
	return "cw-" + short + "-" + hex.EncodeToString(sum[:4])
}

// labelValue fits a Gateway name into a label value (at most 63
// characters); longer names are shortened with a hash.
func labelValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.Trim(name[:50], "-.") + "-" + hex.EncodeToString(sum[:4])
}

// objects returns the desired objects of g, each with its hash annotation.
func (p *Provisioner) objects(g Gateway) []*unstructured.Unstructured {
	name := ObjectName(g.Name)
	labels := maps.Clone(g.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[gwv1.GatewayNameLabelKey] = labelValue(g.Name)
	labels[LabelProvisioner] = p.opts.Instance
	labels["app.kubernetes.io/managed-by"] = "causeway"
	annotations := maps.Clone(g.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationGateway] = g.Namespace + "/" + g.Name

	meta := func(objName string, extra map[string]string) map[string]any {
		l := maps.Clone(labels)
		maps.Copy(l, extra)
		m := map[string]any{"name": objName, "namespace": g.Namespace, "labels": toAny(l), "annotations": toAny(annotations)}
		if g.UID != "" {
			m["ownerReferences"] = []any{map[string]any{
				"apiVersion": gwv1.GroupVersion.String(), "kind": "Gateway", "name": g.Name, "uid": g.UID,
				// No blockOwnerDeletion: it would need update on
				// gateways/finalizers where OwnerReferencesPermissionEnforcement runs.
				"controller": true,
			}}
		}
		return m
	}
	obj := func(apiVersion, kind, objName string, extra map[string]string, body map[string]any) *unstructured.Unstructured {
		u := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta(objName, extra)}
		maps.Copy(u, body)
		return &unstructured.Unstructured{Object: u}
	}

	var out []*unstructured.Unstructured
	switch p.opts.Mode {
	case InProcess:
		out = append(out, obj("v1", "Service", name, nil, map[string]any{"spec": map[string]any{
			"clusterIP": "None", "ports": servicePorts(g.Ports, false),
		}}))
		for _, s := range p.slices(g) {
			out = append(out, obj("discovery.k8s.io/v1", "EndpointSlice", name+"-"+strings.ToLower(s.family), map[string]string{
				"kubernetes.io/service-name":             name,
				"endpointslice.kubernetes.io/managed-by": "causeway.dev",
			}, map[string]any{"addressType": s.family, "endpoints": s.endpoints, "ports": slicePorts(g.Ports)}))
		}
	case Deployment:
		sel := map[string]string{LabelProxy: name}
		out = append(out,
			obj("v1", "ServiceAccount", name, nil, map[string]any{"automountServiceAccountToken": false}),
			obj("v1", "Secret", name, nil, map[string]any{"type": "Opaque", "data": map[string]any{
				"ca.pem": base64.StdEncoding.EncodeToString(p.opts.ControlCA),
				"token":  base64.StdEncoding.EncodeToString([]byte(p.opts.ControlToken)),
			}}),
			obj("apps/v1", "Deployment", name, nil, map[string]any{"spec": p.deploymentSpec(g, name, labels, annotations, sel)}),
			obj("v1", "Service", name, nil, map[string]any{"spec": map[string]any{
				"type": p.opts.ServiceType, "selector": toAny(sel), "ports": servicePorts(g.Ports, true),
			}}),
		)
	}
	for _, u := range out {
		setHash(u)
	}
	return out
}

const mountDir = "/etc/causeway/control"

func (p *Provisioner) deploymentSpec(g Gateway, name string, labels, annotations, sel map[string]string) map[string]any {
	podLabels := maps.Clone(labels)
	maps.Copy(podLabels, sel)
	args := []any{"proxy", "--control", p.opts.ControlAddress, "--gateways", g.Namespace + "/" + g.Name,
		"--ca", mountDir + "/ca.pem", "--token-file", mountDir + "/token",
		// Pods do not own the Gateway's spec.addresses: the Service
		// brings traffic to the pod's own address.
		"--listen-address", "0.0.0.0"}
	for _, a := range p.opts.ExtraArgs {
		args = append(args, a)
	}
	var ports []any
	for _, pt := range g.Ports {
		ports = append(ports, map[string]any{"name": pt.Name(), "containerPort": int64(pt.Port), "protocol": pt.Protocol})
	}
	container := map[string]any{
		"name": "proxy", "image": p.opts.Image, "args": args,
		"volumeMounts": []any{map[string]any{"name": "control", "mountPath": mountDir, "readOnly": true}},
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
			// Listeners on 80 and 443 as a non-root user.
			"capabilities": map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}},
		},
	}
	if len(ports) > 0 {
		container["ports"] = ports
	}
	// No replicas: left to the Deployment's default, a user's kubectl
	// scale or an autoscaler, which server-side apply then leaves alone.
	return map[string]any{
		"selector": map[string]any{"matchLabels": toAny(sel)},
		"template": map[string]any{
			"metadata": map[string]any{"labels": toAny(podLabels), "annotations": toAny(annotations)},
			"spec": map[string]any{
				"serviceAccountName":           name,
				"automountServiceAccountToken": false, // the proxy never calls the API server
				"securityContext": map[string]any{
					"runAsNonRoot": true, "runAsUser": int64(65532),
					"seccompProfile": map[string]any{"type": "RuntimeDefault"},
				},
				"containers": []any{container},
				"volumes": []any{map[string]any{"name": "control",
					"secret": map[string]any{"secretName": name, "defaultMode": int64(0o440)}}},
			},
		},
	}
}

type slice struct {
	family    string // IPv4 or IPv6
	endpoints []any
}

// slices lists g's addresses by family. "" (all interfaces) stands for
// Options.PodIPs. Loopback, link-local and unspecified addresses are left
// out: the API server refuses them in EndpointSlices, and no other pod
// could reach them anyway. A Gateway left with none still gets an IPv4
// slice without endpoints, which publishes its ports.
func (p *Provisioner) slices(g Gateway) []slice {
	var v4, v6 []any
	seen := map[netip.Addr]bool{}
	add := func(s string) {
		a, err := netip.ParseAddr(s)
		if err != nil || seen[a.Unmap()] {
			return
		}
		a = a.Unmap()
		seen[a] = true
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
			return
		}
		ep := map[string]any{"addresses": []any{a.String()}, "conditions": map[string]any{"ready": true}}
		if a.Is4() {
			v4 = append(v4, ep)
		} else {
			v6 = append(v6, ep)
		}
	}
	for _, a := range g.Addresses {
		if a == "" {
			for _, ip := range p.opts.PodIPs {
				add(ip)
			}
			continue
		}
		add(a)
	}
	var out []slice
	if len(v4) > 0 || len(v6) == 0 {
		out = append(out, slice{family: "IPv4", endpoints: v4})
	}
	if len(v6) > 0 {
		out = append(out, slice{family: "IPv6", endpoints: v6})
	}
	for i := range out {
		if out[i].endpoints == nil {
			out[i].endpoints = []any{}
		}
	}
	return out
}

func servicePorts(ports []Port, target bool) []any {
	out := []any{}
	for _, p := range ports {
		m := map[string]any{"name": p.Name(), "port": int64(p.Port), "protocol": p.Protocol}
		if target {
			m["targetPort"] = int64(p.Port)
		}
		out = append(out, m)
	}
	return out
}

func slicePorts(ports []Port) []any {
	out := []any{}
	for _, p := range ports {
		out = append(out, map[string]any{"name": p.Name(), "port": int64(p.Port), "protocol": p.Protocol})
	}
	return out
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setHash annotates u with the hash of its content (encoding/json sorts
// map keys, so equal objects hash equally).
func setHash(u *unstructured.Unstructured) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		panic(err) // plain maps, strings and numbers always encode
	}
	sum := sha256.Sum256(b)
	a := u.GetAnnotations()
	a[AnnotationHash] = hex.EncodeToString(sum[:12])
	u.SetAnnotations(a)
}

// hashOf returns u's hash annotation.
func hashOf(u *unstructured.Unstructured) string { return u.GetAnnotations()[AnnotationHash] }
