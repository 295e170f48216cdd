package translate

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// Client certificate validation: a Gateway's spec.tls.frontend, its
// default and per-port overrides, resolved for each HTTPS listener into an
// ir.ClientValidation.

// Gateway API's condition types and reasons for frontend TLS.
const (
	reasonInvalidCACertificateRef  = "InvalidCACertificateRef"
	reasonInvalidCACertificateKind = "InvalidCACertificateKind"
	reasonNoValidCACertificate     = "NoValidCACertificate"
	condInsecureFrontendValidation = "InsecureFrontendValidationMode"
	reasonConfigurationChanged     = "ConfigurationChanged"
)

// caCertKey is the key of a ConfigMap or Secret holding a CA bundle.
const caCertKey = "ca.crt"

// checkGatewayTLS validates spec.tls as a whole. It returns the condition
// that rejects the Gateway (what the API server's schema would refuse), and
// notes an insecure validation mode on the Gateway. spec.tls.backend is
// resolved in backendtls.go.
func checkGatewayTLS(g *gateway) *status.Condition {
	spec := g.obj.Spec.TLS
	if spec == nil {
		return nil
	}
	bad := func(reason, field, format string, args ...any) *status.Condition {
		c := cond(status.Accepted, false, reason, field, format, args...)
		return &c
	}
	if spec.Frontend == nil {
		return nil
	}
	var insecure []string
	check := func(v *gwv1.FrontendTLSValidation, field string) *status.Condition {
		if v == nil {
			return nil
		}
		if len(v.CACertificateRefs) == 0 {
			return bad(status.ReasonInvalid, field+".caCertificateRefs", "caCertificateRefs needs at least one reference")
		}
		switch v.Mode {
		case "", gwv1.AllowValidOnly:
		case gwv1.AllowInsecureFallback:
			insecure = append(insecure, field)
		default:
			return bad(status.ReasonUnsupportedValue, field+".mode",
				"mode %q is not supported; use AllowValidOnly or AllowInsecureFallback", v.Mode)
		}
		return nil
	}
	if c := check(spec.Frontend.Default.Validation, "spec.tls.frontend.default.validation"); c != nil {
		return c
	}
	seen := map[gwv1.PortNumber]bool{}
	for i, pp := range spec.Frontend.PerPort {
		field := fmt.Sprintf("spec.tls.frontend.perPort[%d]", i)
		if pp.Port < 1 || pp.Port > 65535 {
			return bad(status.ReasonInvalid, field+".port", "port %d is out of range 1-65535", pp.Port)
		}
		if seen[pp.Port] {
			return bad(status.ReasonInvalid, field+".port", "port %d has more than one perPort entry", pp.Port)
		}
		seen[pp.Port] = true
		if c := check(pp.TLS.Validation, field+".tls.validation"); c != nil {
			return c
		}
	}
	if len(insecure) > 0 {
		g.res.Conditions = append(g.res.Conditions, cond(condInsecureFrontendValidation, true, reasonConfigurationChanged, insecure[0],
			"%s: mode AllowInsecureFallback accepts clients without a valid certificate", strings.Join(insecure, ", ")))
	}
	return nil
}

// frontendValidation returns the validation that applies to port: its
// perPort entry if any (which may have none), else the default.
func frontendValidation(gw *gwv1.Gateway, port int) (*gwv1.FrontendTLSValidation, string) {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil, ""
	}
	f := gw.Spec.TLS.Frontend
	for i, pp := range f.PerPort {
		if int(pp.Port) == port {
			return pp.TLS.Validation, fmt.Sprintf("spec.tls.frontend.perPort[%d].tls.validation", i)
		}
	}
	return f.Default.Validation, "spec.tls.frontend.default.validation"
}

// loadClientValidation resolves the CA certificates an HTTPS listener
// verifies client certificates with. An invalid reference sets
// ResolvedRefs=False on the listener; when none is valid the listener is
// not accepted (NoValidCACertificate), since serving it without
// verification would let any client in.
func (t *translator) loadClientValidation(l *listener, reject func(reason, field, format string, args ...any)) *ir.ClientValidation {
	gw := l.gw.obj
	v, field := frontendValidation(gw, l.port)
	if v == nil {
		return nil
	}
	var problems []string
	var first *status.Condition
	fail := func(reason, f, format string, args ...any) {
		c := cond(status.ResolvedRefs, false, reason, f, format, args...)
		problems = append(problems, c.Message)
		if first == nil {
			first = &c
		}
	}
	var bundle bytes.Buffer
	var origins []string
	for i, ref := range v.CACertificateRefs {
		f := fmt.Sprintf("%s.caCertificateRefs[%d]", field, i)
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		key := nsName{ns, string(ref.Name)}
		kind := string(ref.Kind)
		if ref.Group != "" || kind != "ConfigMap" && kind != "Secret" {
			fail(reasonInvalidCACertificateKind, f, "CA certificate reference to %s %s: only core ConfigMaps and Secrets are supported",
				strings.TrimPrefix(string(ref.Group)+"/"+kind, "/"), key)
			continue
		}
		if !t.permitted(refFrom{gatewayGroup, "Gateway", gw.Namespace}, refTo{"", kind, ns, key.name}) {
			fail(status.ReasonRefNotPermitted, f, "%s %s is in another namespace and no ReferenceGrant there allows Gateways of namespace %s to use it", kind, key, gw.Namespace)
			continue
		}
		data, found := t.caData(kind, key)
		if !found {
			fail(reasonInvalidCACertificateRef, f, "%s %s not found", kind, key)
			continue
		}
		if data == nil {
			fail(reasonInvalidCACertificateRef, f, "%s %s has no key %s", kind, key, caCertKey)
			continue
		}
		n, err := appendCerts(&bundle, data)
		if err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("no PEM certificate in %s", caCertKey)
			}
			fail(reasonInvalidCACertificateRef, f, "%s %s: %v", kind, key, err)
			continue
		}
		origins = append(origins, kind+"/"+key.String())
	}
	if first != nil {
		first.Message = strings.Join(problems, "; ")
		if l.refsCond == nil || l.refsCond.Reason == status.ReasonInvalidRouteKinds {
			l.refsCond = first
		}
	}
	if len(origins) == 0 {
		reject(reasonNoValidCACertificate, "", "none of the CA certificates of %s is usable; the listener is not served", field)
		return nil
	}
	return &ir.ClientValidation{
		CACertPEM: bundle.Bytes(),
		Optional:  v.Mode == gwv1.AllowInsecureFallback,
		Origin:    strings.Join(origins, ","),
	}
}

// caData returns the ca.crt entry of a ConfigMap or Secret (nil if it has
// none), and whether the object exists.
func (t *translator) caData(kind string, key nsName) ([]byte, bool) {
	if kind == "Secret" {
		sec := t.secrets[key]
		if sec == nil {
			return nil, false
		}
		if v, ok := sec.StringData[caCertKey]; ok {
			return []byte(v), true
		}
		return sec.Data[caCertKey], true
	}
	cm := t.front.configMaps[key]
	if cm == nil {
		return nil, false
	}
	if v, ok := cm.Data[caCertKey]; ok {
		return []byte(v), true
	}
	return cm.BinaryData[caCertKey], true
}

// appendCerts re-encodes the certificates of a PEM bundle into out,
// counting them; anything that is not a parseable certificate is an error.
func appendCerts(out *bytes.Buffer, data []byte) (int, error) {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return 0, fmt.Errorf("%s holds a %s block; only certificates belong there", caCertKey, b.Type)
		}
		// A leaf is accepted as a trust anchor too: pinning one client
		// certificate is a real use.
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return 0, fmt.Errorf("certificate %d of %s: %w", n+1, caCertKey, err)
		}
		_ = pem.Encode(out, &pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
		n++
	}
	return n, nil
}

// indexConfigMaps is the ConfigMap lookup of frontend validation.
func indexConfigMaps(cms []*corev1.ConfigMap) map[nsName]*corev1.ConfigMap {
	out := make(map[nsName]*corev1.ConfigMap, len(cms))
	for _, cm := range cms {
		out[nsName{cm.Namespace, cm.Name}] = cm
	}
	return out
}
