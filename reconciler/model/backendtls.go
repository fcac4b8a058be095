package model

import (
	"fmt"
	"path"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/status"
)

// DefaultSystemCAFile is the CA bundle a BackendTLSPolicy with
// wellKnownCACertificates: System trusts unless Input.SystemCAFile (flag
// --system-ca-file) names another: the system roots of the proxy host, the
// path of the Debian and Alpine bundle (Envoy reads it as any trusted_ca
// file).
const DefaultSystemCAFile = "/etc/ssl/certs/ca-certificates.crt"

// backendTLS applies the BackendTLSPolicies (Gateway API v1) to the
// clusters of their target Backends: TLS with SNI hostname, a CA bundle
// from a file on the proxy host (caCertificateRefs {kind: ConfigMap or
// Secret, name: N} is <certs dir>/<ns>/<N>/ca.crt, the layout of a mounted
// ConfigMap; the annotation gitxds.dev/certs-dir of the policy replaces
// /etc/gitxds/certs) or the system roots, and the subjectAltNames to match
// (the hostname when none). Two policies on one target: the first by name
// wins. gRPC nodes cannot be given TLS to backends without certificate
// providers in their bootstrap (gRFC A29): they get no cluster for such a
// Backend, and their calls to it fail with UNAVAILABLE; the status says so.
//
// Sets on BackendTLSPolicies: Accepted (Accepted, Invalid, TargetNotFound,
// Conflicted) and ResolvedRefs (ResolvedRefs, InvalidKind,
// InvalidCACertificateRef).
func (b *builder) backendTLS() {
	var pols []*object
	for _, o := range b.live() {
		if _, ok := o.typed.(*gwv1.BackendTLSPolicy); ok {
			pols = append(pols, o)
		}
	}
	sort.Slice(pols, func(i, j int) bool { return pols[i].src.Name < pols[j].src.Name })
	byTarget := map[string]*ir.UpstreamTLS{}
	owner := map[string]string{}
	gateways := b.gatewaysOfBackends()
	for _, o := range pols {
		t := o.typed.(*gwv1.BackendTLSPolicy)
		tls, reason, msg := b.upstreamTLS(o, t)
		if msg != "" {
			if reason == string(gwv1.PolicyReasonInvalid) {
				o.reject(reason, "%s", msg)
				continue
			}
			o.dropped = true
			o.set(CondAccepted, metav1.ConditionFalse, string(gwv1.BackendTLSPolicyReasonNoValidCACertificate), o.msg("%s", msg))
			o.set(CondResolvedRefs, metav1.ConditionFalse, reason, o.msg("%s", msg))
			continue
		}
		var missing, conflicts []string
		ancestors := map[*gateway]bool{}
		for i, ref := range t.Spec.TargetRefs {
			key, msg := b.tlsTarget(o.src.Namespace, ref)
			if msg != "" {
				missing = append(missing, fmt.Sprintf("targetRefs[%d]: %s", i, msg))
				continue
			}
			for g := range gateways[strings.Split(key, ":")[0]] {
				ancestors[g] = true
			}
			if w, ok := owner[key]; ok && w != o.src.Name {
				conflicts = append(conflicts, fmt.Sprintf("targetRefs[%d]: %s is already targeted by BackendTLSPolicy %s, which wins (first by name)", i, key, w))
				continue
			}
			owner[key], byTarget[key] = o.src.Name, tls
		}
		switch {
		case len(conflicts) > 0:
			o.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonConflicted), o.msg("%s", strings.Join(append(conflicts, missing...), "; ")))
		case len(missing) > 0:
			o.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonTargetNotFound), o.msg("%s", strings.Join(missing, "; ")))
		default:
			o.set(CondAccepted, metav1.ConditionTrue, string(gwv1.PolicyReasonAccepted),
				"accepted; gRPC nodes cannot be given TLS to backends (certificate providers, gRFC A29): they get no cluster for these backends and their calls fail with UNAVAILABLE")
		}
		o.set(CondResolvedRefs, metav1.ConditionTrue, string(gwv1.BackendTLSPolicyReasonResolvedRefs), "all references resolved")
		o.ancestors = policyAncestors(o, ancestors)
	}
	for _, c := range b.clusters {
		tls := byTarget["Backend "+c.Owner.Namespace+"/"+c.Owner.Name]
		if s := c.Service; s != nil {
			// A policy on the Service's port wins over one on the Service.
			if tls = byTarget[fmt.Sprintf("%s:%d", serviceKey(s.Namespace, s.Name), s.Port)]; tls == nil {
				tls = byTarget[serviceKey(s.Namespace, s.Name)]
			}
		}
		if tls != nil {
			v := *tls
			v.SubjectAltNames = append([]ir.SubjectAltName(nil), tls.SubjectAltNames...)
			c.UpstreamTLS = &v
		}
	}
}

// tlsTarget resolves a targetRef to its key, or says why not. Targets are
// Backends and Services of the policy's namespace: "Backend ns/name",
// "Service ns/name" (every port) or "Service ns/name:port" (sectionName, the
// name of a port of the Service: known only when the model is given the
// cluster's Services).
func (b *builder) tlsTarget(ns string, ref gwv1.LocalPolicyTargetReferenceWithSectionName) (string, string) {
	switch {
	case ref.Group == "" && string(ref.Kind) == kindService:
		ports, found := b.serviceOf(ns, string(ref.Name))
		switch {
		case !found:
			return "", fmt.Sprintf("Service %s/%s does not exist in the Kubernetes API", ns, ref.Name)
		case ref.SectionName == nil:
			return serviceKey(ns, string(ref.Name)), ""
		case b.cluster == nil:
			return "", fmt.Sprintf("sectionName %q names a port of Service %s/%s, and gitxds knows a Service's ports only from the Kubernetes API (not given here): target the whole Service", *ref.SectionName, ns, ref.Name)
		}
		port, ok := ports[string(*ref.SectionName)]
		if !ok {
			return "", fmt.Sprintf("Service %s/%s has no port named %q", ns, ref.Name, *ref.SectionName)
		}
		return fmt.Sprintf("%s:%d", serviceKey(ns, string(ref.Name)), port), ""
	case string(ref.Group) == v1alpha1.Group && string(ref.Kind) == v1alpha1.KindBackend:
		if ref.SectionName != nil {
			return "", "sectionName is not supported on a Backend target"
		}
		if _, ok := b.backends[ns+"/"+string(ref.Name)]; !ok {
			return "", fmt.Sprintf("Backend %s/%s does not exist or is not accepted", ns, ref.Name)
		}
		return "Backend " + ns + "/" + string(ref.Name), ""
	}
	return "", fmt.Sprintf("%s is not a supported target; target a Service or a Backend (group %s)", groupKind(&ref.Group, ref.Kind), v1alpha1.Group)
}

// serviceKey is the key of Service ns/name among a route's backends
// (resolveService) and a policy's targets.
func serviceKey(ns, name string) string { return kindService + " " + ns + "/" + name }

// upstreamTLS validates a policy's validation settings. The reason is
// Invalid for what the schema refuses, or a ResolvedRefs reason.
func (b *builder) upstreamTLS(o *object, t *gwv1.BackendTLSPolicy) (*ir.UpstreamTLS, string, string) {
	s := t.Spec
	invalid := string(gwv1.PolicyReasonInvalid)
	if len(s.TargetRefs) == 0 {
		return nil, invalid, "spec.targetRefs is empty"
	}
	if len(s.Options) > 0 {
		return nil, invalid, "spec.options are not supported; remove them"
	}
	v := s.Validation
	host := string(v.Hostname)
	if msg := validHostname(host); msg != "" || strings.HasPrefix(host, "*") {
		return nil, invalid, fmt.Sprintf("validation.hostname %q must be a hostname without wildcard", host)
	}
	out := &ir.UpstreamTLS{SNI: host}
	switch {
	case len(v.CACertificateRefs) > 0 && v.WellKnownCACertificates != nil:
		return nil, invalid, "validation: set caCertificateRefs or wellKnownCACertificates, not both"
	case v.WellKnownCACertificates != nil:
		if *v.WellKnownCACertificates != gwv1.WellKnownCACertificatesSystem {
			return nil, invalid, fmt.Sprintf("validation.wellKnownCACertificates %q is not System", *v.WellKnownCACertificates)
		}
		out.TrustedCAFile = DefaultSystemCAFile
		if b.systemCA != "" {
			out.TrustedCAFile = b.systemCA
		}
	case len(v.CACertificateRefs) == 1:
		ref := v.CACertificateRefs[0]
		if ref.Group != "" || (ref.Kind != "ConfigMap" && ref.Kind != "Secret") {
			return nil, string(gwv1.BackendTLSPolicyReasonInvalidKind), fmt.Sprintf("validation.caCertificateRefs[0]: %s is not supported; refer to a ConfigMap or Secret", groupKind(&ref.Group, ref.Kind))
		}
		if msg := validName(string(ref.Name)); msg != "" {
			return nil, string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), "validation.caCertificateRefs[0]: name " + msg
		}
		dir := DefaultCertsDir
		if d, ok := t.Annotations[AnnotationCertsDir]; ok {
			if !path.IsAbs(d) || path.Clean(d) != d {
				return nil, invalid, fmt.Sprintf("annotation %s: %q must be a clean absolute path", AnnotationCertsDir, d)
			}
			dir = d
		}
		out.TrustedCAFile = path.Join(dir, o.src.Namespace, string(ref.Name), "ca.crt")
	case len(v.CACertificateRefs) > 1:
		return nil, invalid, "validation.caCertificateRefs: only one is supported; put every CA in its ca.crt"
	default:
		return nil, invalid, "validation: set caCertificateRefs or wellKnownCACertificates: System"
	}
	for i, san := range v.SubjectAltNames {
		switch san.Type {
		case gwv1.HostnameSubjectAltNameType:
			if msg := validHostname(string(san.Hostname)); msg != "" || san.URI != "" {
				return nil, invalid, fmt.Sprintf("validation.subjectAltNames[%d]: set a valid hostname and no uri", i)
			}
			out.SubjectAltNames = append(out.SubjectAltNames, ir.SubjectAltName{Value: string(san.Hostname)})
		case gwv1.URISubjectAltNameType:
			if san.URI == "" || san.Hostname != "" || !strings.Contains(string(san.URI), ":") {
				return nil, invalid, fmt.Sprintf("validation.subjectAltNames[%d]: set an absolute uri and no hostname", i)
			}
			out.SubjectAltNames = append(out.SubjectAltNames, ir.SubjectAltName{URI: true, Value: string(san.URI)})
		default:
			return nil, invalid, fmt.Sprintf("validation.subjectAltNames[%d].type %q is not Hostname or URI", i, san.Type)
		}
	}
	return out, "", ""
}

// gatewaysOfBackends maps "Backend ns/name" and "Service ns/name" to the
// Gateways whose listeners have a route to it: the ancestors of a policy
// on it.
func (b *builder) gatewaysOfBackends() map[string]map[*gateway]bool {
	out := map[string]map[*gateway]bool{}
	for _, r := range b.rts {
		for _, keys := range r.ruleBackends {
			for _, k := range keys {
				if !strings.HasPrefix(k, kindService+" ") {
					k = "Backend " + k
				}
				for _, a := range r.attached {
					if out[k] == nil {
						out[k] = map[*gateway]bool{}
					}
					out[k][a.l.gw] = true
				}
			}
		}
	}
	return out
}

// policyAncestors is status.ancestors of a policy: each Gateway, by
// namespace/name, with the policy's Accepted and ResolvedRefs.
func policyAncestors(o *object, gws map[*gateway]bool) []gwv1.PolicyAncestorStatus {
	sorted := make([]*gateway, 0, len(gws))
	for g := range gws {
		sorted = append(sorted, g)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].obj.src.ID() < sorted[j].obj.src.ID() })
	out := make([]gwv1.PolicyAncestorStatus, 0, len(sorted))
	for _, g := range sorted {
		var conds []metav1.Condition
		for _, typ := range []string{CondAccepted, CondResolvedRefs} {
			if c := o.get(typ); c != nil {
				conds = append(conds, *c)
			}
		}
		ref := defaultParentRef(gwv1.ParentReference{Name: gwv1.ObjectName(g.gw.Name)}, g.gw.Namespace)
		out = append(out, gwv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: status.ControllerName, Conditions: conds})
	}
	return out
}
