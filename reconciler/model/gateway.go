package model

import (
	"fmt"
	"path"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

// Gateway annotations gitxds reads.
const (
	// AnnotationCertsDir overrides DefaultCertsDir for a Gateway's listeners.
	AnnotationCertsDir = "gitxds.dev/certs-dir"
	// AnnotationAccessLog is a file path on the proxy ("/dev/stdout") every
	// listener of the Gateway writes its access log to.
	AnnotationAccessLog = "gitxds.dev/access-log"
	// AnnotationAccessLogGRPC names a Backend of the Gateway's namespace
	// that receives every listener's access logs over gRPC ALS
	// (envoy.service.accesslog.v3). Envoy only.
	AnnotationAccessLogGRPC = "gitxds.dev/access-log-grpc"
	// AnnotationEnvoyRouteConfig chooses how Envoy nodes get the routes
	// of the Gateway's plaintext ports. Without it, by each Envoy's
	// version: 1.38 or later gets scoped routes (one RouteConfiguration
	// per hostname), older or unknown versions one RouteConfiguration per
	// port (see snapshot.ScopedRoutesSince). "per-hostname" gives every
	// Envoy scoped routes (an operator who knows their Envoys start them,
	// e.g. a patched build); "per-port" gives every Envoy one
	// RouteConfiguration per port.
	AnnotationEnvoyRouteConfig = "gitxds.dev/envoy-route-config"
	// DefaultCertsDir is where a proxy host keeps the certificates of the
	// HTTPS listeners: certificateRef <name> of namespace <ns> is
	// <dir>/<ns>/<name>/tls.crt and tls.key.
	DefaultCertsDir = "/etc/gitxds/certs"
)

type gateway struct {
	obj       *object
	gw        *gwv1.Gateway
	group     string      // AnnotationProxyGroup; "" for the default group
	listeners []*listener // valid ones, in the Gateway's order
	all       []*listener // every listener of the spec, in its order
}

type listener struct {
	gw       *gateway
	ir       ir.Listener
	whereStr string // where(), made once
	from     gwv1.FromNamespaces
	selector labels.Selector
	kinds    map[string]bool
	// supported are the valid kinds of allowedRoutes.kinds, for
	// status.listeners[].supportedKinds.
	supported []gwv1.RouteGroupKind
	problem   string // why the listener is invalid; "" if valid
	// resolved is the message of ResolvedRefs=True: how far its
	// references were checked; "" for the default.
	resolved string
	// reason is Gateway API's reason for problem; its type says which
	// listener condition it sets (listenerStatus).
	reason gwv1.ListenerConditionReason
}

var routeKinds = []string{"HTTPRoute", "GRPCRoute"}

// gateways validates the Gateways and their listeners. An invalid listener
// is left out; a Gateway with no valid listener is rejected. Listeners of
// all Gateways of a proxy group share the proxies' ports, so two listeners
// of one group on one port must agree on the protocol and have distinct
// hostnames.
//
// Sets on Gateways: Accepted (Accepted, ListenersNotValid, UnsupportedValue),
// PartiallyInvalid=True reason ListenersNotValid when only some listeners
// are valid, and Programmed (Programmed, Invalid) once its listeners are
// checked.
func (b *builder) gateways() {
	b.gatewayClasses()
	var gws []*gateway
	for _, o := range b.live() {
		if t, ok := o.typed.(*gwv1.Gateway); ok {
			gws = append(gws, &gateway{obj: o, gw: t})
		}
	}
	sort.Slice(gws, func(i, j int) bool { return gws[i].obj.src.ID() < gws[j].obj.src.ID() })
	var all []*listener
	for _, g := range gws {
		if msg := unsupportedGatewayFields(g.gw); msg != "" {
			g.obj.reject(string(gwv1.GatewayReasonInvalid), "%s", msg)
			continue
		}
		g.group, _ = proxyGroup(g.gw) // valid: unsupportedGatewayFields checked it
		names := map[gwv1.SectionName]int{}
		for _, l := range g.gw.Spec.Listeners {
			names[l.Name]++
		}
		for i := range g.gw.Spec.Listeners {
			l := b.listener(g, &g.gw.Spec.Listeners[i])
			if names[g.gw.Spec.Listeners[i].Name] > 1 {
				l.problem = fmt.Sprintf("listener name %q is used more than once", l.ir.Name)
				l.reason = gwv1.ListenerReasonUnsupportedValue
			}
			all = append(all, l)
			g.all = append(g.all, l)
		}
	}
	listenerConflicts(all)
	b.allGws = gws
	for _, g := range gws {
		if g.obj.dropped {
			continue
		}
		var bad []string
		for _, l := range all {
			if l.gw != g {
				continue
			}
			if l.problem != "" {
				bad = append(bad, fmt.Sprintf("listener %s: %s", l.ir.Name, l.problem))
				continue
			}
			g.listeners = append(g.listeners, l)
		}
		switch {
		case len(g.listeners) == 0 && len(bad) == 0:
			g.obj.reject(string(gwv1.GatewayReasonListenersNotValid), "the Gateway has no listeners")
		case len(g.listeners) == 0:
			g.obj.reject(string(gwv1.GatewayReasonListenersNotValid), "no listener is valid: %s", strings.Join(bad, "; "))
		case len(bad) > 0:
			msg := g.obj.msg("these listeners are not served: %s", strings.Join(bad, "; "))
			g.obj.set(CondAccepted, metav1.ConditionTrue, string(gwv1.GatewayReasonListenersNotValid), msg)
			g.obj.set(CondPartiallyInvalid, metav1.ConditionTrue, string(gwv1.GatewayReasonListenersNotValid), msg)
		}
		if len(g.listeners) > 0 {
			if g.obj.get(CondAccepted) == nil {
				g.obj.set(CondAccepted, metav1.ConditionTrue, string(gwv1.GatewayReasonAccepted), "accepted")
			}
			programmed := "the valid listeners are part of the configuration gitxds serves (the rollout on /status says which nodes have it)"
			if g.group != "" {
				programmed = fmt.Sprintf("the valid listeners are part of the configuration gitxds serves to the nodes of proxy group %s (the rollout on /status says which nodes have it)", g.group)
				g.obj.proxyGroup = g.group
			}
			g.obj.set(CondProgrammed, metav1.ConditionTrue, string(gwv1.GatewayReasonProgrammed), programmed)
			b.gws = append(b.gws, g)
			// Valid: unsupportedGatewayFields checked the annotation.
			g.obj.addresses, _ = gatewayAddresses(g.gw)
		} else {
			g.obj.set(CondProgrammed, metav1.ConditionFalse, string(gwv1.GatewayReasonInvalid), "no listener is served")
		}
	}
}

func unsupportedGatewayFields(gw *gwv1.Gateway) string {
	s := gw.Spec
	switch {
	case len(s.Addresses) > 0:
		return "spec.addresses is not supported: gitxds assigns no address (its proxies listen on every address of their hosts); remove it, and declare where clients reach the proxies in annotation " + AnnotationAddresses
	case s.AllowedListeners != nil:
		return "spec.allowedListeners (ListenerSets) is not supported; remove it"
	case s.TLS != nil:
		return "spec.tls (frontend/backend TLS of the Gateway) is not supported; remove it"
	case s.Infrastructure != nil && s.Infrastructure.ParametersRef != nil:
		return "spec.infrastructure.parametersRef is not supported; remove it"
	}
	if dir, ok := gw.Annotations[AnnotationCertsDir]; ok && (!path.IsAbs(dir) || path.Clean(dir) != dir) {
		return fmt.Sprintf("annotation %s: %q must be a clean absolute path", AnnotationCertsDir, dir)
	}
	if f, ok := gw.Annotations[AnnotationAccessLog]; ok && (!path.IsAbs(f) || path.Clean(f) != f) {
		return fmt.Sprintf("annotation %s: %q must be a clean absolute path such as /dev/stdout", AnnotationAccessLog, f)
	}
	if _, msg := gatewayAddresses(gw); msg != "" {
		return msg
	}
	if v, ok := gw.Annotations[AnnotationEnvoyRouteConfig]; ok && v != "per-hostname" && v != "per-port" {
		return fmt.Sprintf("annotation %s: %q must be per-hostname or per-port", AnnotationEnvoyRouteConfig, v)
	}
	if _, msg := proxyGroup(gw); msg != "" {
		return msg
	}
	return ""
}

// listener validates one Gateway listener.
func (b *builder) listener(g *gateway, spec *gwv1.Listener) *listener {
	l := &listener{gw: g, from: gwv1.NamespacesFromSame, kinds: map[string]bool{}}
	l.ir = ir.Listener{Name: string(spec.Name), Port: uint32(spec.Port), Protocol: ir.Protocol(spec.Protocol)}
	if spec.Hostname != nil {
		l.ir.Hostname = string(*spec.Hostname)
	}
	l.whereStr = fmt.Sprintf("Gateway %s/%s listener %s", g.gw.Namespace, g.gw.Name, l.ir.Name)
	l.reason, l.problem = b.validateListener(g, spec, l)
	l.setKinds(spec)
	return l
}

// validateListener returns why the listener is invalid and Gateway API's
// reason for it, or "", "".
func (b *builder) validateListener(g *gateway, spec *gwv1.Listener, l *listener) (gwv1.ListenerConditionReason, string) {
	const unsupported = gwv1.ListenerReasonUnsupportedValue
	if !validPort(spec.Port) {
		return unsupported, fmt.Sprintf("port %d must be 1..65535", spec.Port)
	}
	if l.ir.Hostname != "" {
		if msg := validHostname(l.ir.Hostname); msg != "" {
			return unsupported, "hostname " + msg
		}
	}
	switch spec.Protocol {
	case gwv1.HTTPProtocolType:
		if spec.TLS != nil {
			return unsupported, "an HTTP listener must not have tls; use protocol HTTPS"
		}
	case gwv1.HTTPSProtocolType:
		tls, reason, msg := b.listenerTLS(g, spec)
		if msg != "" {
			// Its allowedRoutes still say which routes attach to it
			// (status.listeners[].attachedRoutes).
			l.allowedRoutes(spec)
			return reason, msg
		}
		l.ir.TLS = tls
		l.resolved = b.certificatesNote()
	default:
		return gwv1.ListenerReasonUnsupportedProtocol, fmt.Sprintf("protocol %q is not supported (UnsupportedProtocol); use HTTP or HTTPS", spec.Protocol)
	}
	if reason, msg := l.allowedRoutes(spec); msg != "" {
		return reason, msg
	}
	l.setKinds(spec)
	return "", ""
}

// allowedRoutes reads the listener's allowedRoutes (kinds, namespaces) and
// returns why they are invalid, or "", "".
func (l *listener) allowedRoutes(spec *gwv1.Listener) (gwv1.ListenerConditionReason, string) {
	const unsupported = gwv1.ListenerReasonUnsupportedValue
	if ar := spec.AllowedRoutes; ar != nil {
		if bad := l.setKinds(spec); bad != "" {
			return gwv1.ListenerReasonInvalidRouteKinds, bad
		}
		if ns := ar.Namespaces; ns != nil && ns.From != nil {
			l.from = *ns.From
			switch l.from {
			case gwv1.NamespacesFromSame, gwv1.NamespacesFromAll, gwv1.NamespacesFromNone:
			case gwv1.NamespacesFromSelector:
				if ns.Selector == nil {
					return unsupported, "allowedRoutes.namespaces.from is Selector but no selector is set"
				}
				sel, err := metav1.LabelSelectorAsSelector(ns.Selector)
				if err != nil {
					return unsupported, fmt.Sprintf("allowedRoutes.namespaces.selector is invalid: %v", err)
				}
				l.selector = sel
			default:
				return unsupported, fmt.Sprintf("allowedRoutes.namespaces.from %q is not one of Same, All, Selector, None", l.from)
			}
		}
	}
	return "", ""
}

// setKinds sets the kinds of routes the listener allows and returns why one
// of allowedRoutes.kinds is not supported, or "". An HTTP or HTTPS listener
// that is invalid for another reason still gets its kinds, for
// status.listeners[].supportedKinds.
func (l *listener) setKinds(spec *gwv1.Listener) string {
	if l.supported != nil || (spec.Protocol != gwv1.HTTPProtocolType && spec.Protocol != gwv1.HTTPSProtocolType) {
		return ""
	}
	l.supported = []gwv1.RouteGroupKind{}
	bad := ""
	if ar := spec.AllowedRoutes; ar != nil {
		for _, k := range ar.Kinds {
			if (k.Group != nil && string(*k.Group) != gatewayGroup) || (k.Kind != "HTTPRoute" && k.Kind != "GRPCRoute") {
				if bad == "" {
					bad = fmt.Sprintf("allowedRoutes.kinds: %s is not supported (InvalidRouteKinds); use HTTPRoute or GRPCRoute", groupKind(k.Group, k.Kind))
				}
				continue
			}
			if !l.kinds[string(k.Kind)] {
				l.supported = append(l.supported, routeGroupKind(string(k.Kind)))
			}
			l.kinds[string(k.Kind)] = true
		}
		if len(ar.Kinds) > 0 {
			return bad
		}
	}
	for _, k := range routeKinds {
		l.kinds[k] = true
		l.supported = append(l.supported, routeGroupKind(k))
	}
	return ""
}

func groupKind(g *gwv1.Group, k gwv1.Kind) string {
	if g == nil || *g == "" {
		return string(k)
	}
	return string(*g) + "/" + string(k)
}

// listenerTLS resolves the certificates of an HTTPS listener to files on the
// proxy host (see the package documentation).
func (b *builder) listenerTLS(g *gateway, spec *gwv1.Listener) (*ir.TLS, gwv1.ListenerConditionReason, string) {
	t := spec.TLS
	if t != nil && t.Mode != nil && *t.Mode != gwv1.TLSModeTerminate {
		return nil, gwv1.ListenerReasonUnsupportedValue, fmt.Sprintf("tls.mode %q is not supported; gitxds terminates TLS (mode Terminate)", *t.Mode)
	}
	if t == nil || len(t.CertificateRefs) == 0 {
		return nil, gwv1.ListenerReasonInvalidCertificateRef, "an HTTPS listener needs tls.certificateRefs"
	}
	if len(t.Options) > 0 {
		return nil, gwv1.ListenerReasonUnsupportedValue, "tls.options are not supported; remove them"
	}
	dir := DefaultCertsDir
	if d, ok := g.gw.Annotations[AnnotationCertsDir]; ok {
		dir = d
	}
	out := &ir.TLS{}
	for i, ref := range t.CertificateRefs {
		if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
			return nil, gwv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("tls.certificateRefs[%d]: %s is not supported (InvalidCertificateRef); refer to a Secret by name", i, groupKind(ref.Group, derefKind(ref.Kind, "Secret")))
		}
		ns := g.gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if !b.permitted(gatewayGroup, "Gateway", g.gw.Namespace, "", "Secret", ns, string(ref.Name)) {
			return nil, gwv1.ListenerReasonRefNotPermitted, fmt.Sprintf("tls.certificateRefs[%d]: Secret %s/%s is in another namespace and no ReferenceGrant in %s allows it (RefNotPermitted)", i, ns, ref.Name, ns)
		}
		if msg := validName(string(ref.Name)); msg != "" {
			return nil, gwv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("tls.certificateRefs[%d]: name %s", i, msg)
		}
		if msg := b.checkCertificateSecret(ns, string(ref.Name)); msg != "" {
			return nil, gwv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("tls.certificateRefs[%d]: %s (InvalidCertificateRef)", i, msg)
		}
		base := path.Join(dir, ns, string(ref.Name))
		out.CertificateRefs = append(out.CertificateRefs, ir.TLSCertificate{
			Name:     ns + "/" + string(ref.Name),
			CertFile: path.Join(base, "tls.crt"),
			KeyFile:  path.Join(base, "tls.key"),
		})
	}
	return out, "", ""
}

func derefKind(k *gwv1.Kind, def string) gwv1.Kind {
	if k == nil {
		return gwv1.Kind(def)
	}
	return *k
}

// listenerConflicts marks listeners that cannot share a port: a port serves
// one protocol, and its listeners need distinct hostnames. Within a Gateway
// every conflicting listener is left out, as Gateway API requires; across
// Gateways the listener of the Gateway first by namespace/name is kept.
// Gateways of different proxy groups share no port (other proxies serve
// them), so their listeners never conflict.
func listenerConflicts(all []*listener) {
	type groupPort struct {
		group string
		port  uint32
	}
	byPort := map[groupPort][]*listener{}
	for _, l := range all {
		if l.problem == "" {
			k := groupPort{l.gw.group, l.ir.Port}
			byPort[k] = append(byPort[k], l)
		}
	}
	for _, ls := range byPort {
		for i, a := range ls {
			for _, c := range ls[:i] {
				if a.ir.Protocol != c.ir.Protocol {
					mark(a, c, gwv1.ListenerReasonProtocolConflict, fmt.Sprintf("port %d is used with protocol %s by %s and %s by %s (ProtocolConflict)", a.ir.Port, c.ir.Protocol, c.where(), a.ir.Protocol, a.where()))
				} else if a.ir.Hostname == c.ir.Hostname {
					mark(a, c, gwv1.ListenerReasonHostnameConflict, fmt.Sprintf("port %d and hostname %q are used by both %s and %s (HostnameConflict)", a.ir.Port, a.ir.Hostname, c.where(), a.where()))
				}
			}
		}
	}
}

// mark records a conflict between a later listener a and an earlier one c.
func mark(a, c *listener, reason gwv1.ListenerConditionReason, msg string) {
	if a.problem == "" {
		a.problem, a.reason = msg, reason
	}
	if a.gw == c.gw && c.problem == "" {
		c.problem, c.reason = msg, reason
	}
}

// where names the listener in messages.
func (l *listener) where() string { return l.whereStr }
