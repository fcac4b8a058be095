// Package gloo converts Gloo Edge configuration (VirtualService, RouteTable,
// Upstream and UpstreamGroup of gateway.solo.io/v1 and gloo.solo.io/v1) into
// a gitxds config repository: platform/ with the Namespaces and a Gateway,
// teams/<namespace>/ with HTTPRoutes, Backends, BackendTrafficPolicies and
// ReferenceGrants, and overlays/<env>/.
//
// Every field of the input is either converted or listed in the Report with
// its file and field path (node.done): nothing is dropped silently.
// docs/migrate-gloo.md describes the mapping feature by feature.
package gloo

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// Options of a conversion.
type Options struct {
	// Overlay is the environment of overlays/<Overlay>/ (default
	// "production").
	Overlay string
	// Gateway is the name of the Gateway in platform/ (default
	// "gateway-proxy", the name of Gloo Edge's default proxy).
	Gateway string
	// HTTPPort and HTTPSPort are the listeners' ports (default 8080 and
	// 8443, those of Gloo Edge's default gateways).
	HTTPPort, HTTPSPort int32
}

func (o *Options) defaults() {
	if o.Overlay == "" {
		o.Overlay = "production"
	}
	if o.Gateway == "" {
		o.Gateway = "gateway-proxy"
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 8080
	}
	if o.HTTPSPort == 0 {
		o.HTTPSPort = 8443
	}
}

// Listener names of the Gateway.
const (
	listenerHTTP = "http"
	platformNS   = "platform"
)

// Result is the converted repository and the report.
type Result struct {
	// Files maps slash-separated paths relative to the repository root to
	// their contents.
	Files  map[string][]byte
	Report *Report
}

// converter holds one conversion's state.
type converter struct {
	opts Options
	r    *Report

	vss, rts  []*object
	upstreams map[string]*object // by namespace/name
	groups    map[string]*object

	backends map[string]*backendOut // by namespace/name
	routes   []*routeOut
	// routeNames are the HTTPRoutes' namespace/name taken so far.
	routeNames map[string]bool
	// grants[to namespace][from namespace] lists Backend names.
	grants map[string]map[string]map[string]bool
	// secretGrants[namespace] lists Secret names the Gateway refers to.
	secretGrants map[string]map[string]bool
	https        []gwv1.Listener
	namespaces   map[string]bool
	// rtUses counts the delegations to each RouteTable.
	rtUses map[string]int
	// inputNS are the namespaces of the input objects.
	inputNS map[string]bool
}

// Convert converts the inputs. It fails only on input that is not YAML;
// everything else that cannot be converted is in the Report.
func Convert(inputs []Input, opts Options) (*Result, error) {
	opts.defaults()
	c := &converter{
		opts: opts, r: &Report{},
		upstreams: map[string]*object{}, groups: map[string]*object{},
		backends: map[string]*backendOut{}, routeNames: map[string]bool{},
		grants: map[string]map[string]map[string]bool{}, secretGrants: map[string]map[string]bool{},
		namespaces: map[string]bool{}, rtUses: map[string]int{}, inputNS: map[string]bool{},
	}
	objs, err := parse(inputs, c.r)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		c.inputNS[o.namespace] = true
	}
	for _, o := range objs {
		if o.namespace == platformNS {
			c.r.notConverted(o.file, fmt.Sprintf("%s %s metadata.namespace", o.kind, o.key()), "namespace %q is the gitxds platform's (platform/); move the object to another namespace", platformNS)
			continue
		}
		switch o.kind {
		case kindVirtualService:
			c.vss = append(c.vss, o)
		case kindRouteTable:
			c.rts = append(c.rts, o)
		case kindUpstream:
			c.addUnique(c.upstreams, o)
		case kindUpstreamGroup:
			c.addUnique(c.groups, o)
		}
	}
	sortObjects(c.vss)
	sortObjects(c.rts)
	for _, k := range sortedKeys(c.upstreams) {
		c.upstream(c.upstreams[k])
	}
	for _, vs := range c.vss {
		c.virtualService(vs)
	}
	for _, rt := range c.rts {
		if c.rtUses[rt.key()] == 0 {
			c.r.notConverted(rt.file, fmt.Sprintf("RouteTable %s", rt.key()), "no VirtualService among the inputs delegates to this RouteTable; its routes are not converted")
		}
	}
	for _, k := range sortedKeys(c.groups) {
		g := c.groups[k]
		g.spec.skip("destinations") // read where a route uses the group
		g.spec.done()
	}
	files, err := c.write()
	if err != nil {
		return nil, err
	}
	c.r.sort()
	return &Result{Files: files, Report: c.r}, nil
}

func (c *converter) addUnique(m map[string]*object, o *object) {
	if prev, ok := m[o.key()]; ok {
		c.r.notConverted(o.file, fmt.Sprintf("%s %s", o.kind, o.key()), "defined twice (also in %s); the first is converted", prev.file)
		return
	}
	m[o.key()] = o
}

func sortObjects(l []*object) {
	sort.SliceStable(l, func(i, j int) bool { return l[i].key() < l[j].key() })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// routeOut is one HTTPRoute of the output.
type routeOut struct {
	ns, name  string
	src       *object // the VirtualService or RouteTable
	hostnames []gwv1.Hostname
	sections  []string // listeners of the Gateway
	rules     []*ruleOut
	ruleNames map[string]bool
}

// ruleOut is one rule and the policy its Gloo options need.
type ruleOut struct {
	rule   gwv1.HTTPRouteRule
	policy *v1alpha1.BackendTrafficPolicySpec
}

// newRoute reserves the HTTPRoute name ns/name (suffixed when taken).
func (c *converter) newRoute(ns, name string, src *object, root *routeOut) *routeOut {
	name = dnsLabel(name)
	for i := 2; c.routeNames[ns+"/"+name]; i++ {
		name = fmt.Sprintf("%s-%d", dnsLabel(strings.TrimSuffix(name, fmt.Sprintf("-%d", i-1))), i)
	}
	c.routeNames[ns+"/"+name] = true
	c.namespaces[ns] = true
	rt := &routeOut{ns: ns, name: name, src: src, ruleNames: map[string]bool{}}
	if root != nil {
		rt.hostnames, rt.sections = root.hostnames, root.sections
	}
	c.routes = append(c.routes, rt)
	return rt
}

// virtualService converts a VirtualService: its own routes become the
// HTTPRoute <vs name> in its namespace; the routes of the RouteTables it
// delegates to become HTTPRoutes in the RouteTables' namespaces, with the
// same hostnames and listeners.
func (c *converter) virtualService(vs *object) {
	spec := vs.spec
	spec.skip("displayName")
	vh := spec.child("virtualHost")
	out := c.newRoute(vs.namespace, vs.name, vs, nil)
	out.hostnames = c.hostnames(vh)
	if ssl := spec.child("sslConfig"); ssl != nil {
		out.sections = c.tlsListeners(vs, ssl, out.hostnames)
	} else {
		out.sections = []string{listenerHTTP}
	}
	var vhOpts []*node
	if o := vh.child("options"); o != nil {
		vhOpts = []*node{o}
	}
	for _, r := range vh.list("routes") {
		c.route(out, r, parent{vs: vs, root: out, opts: vhOpts, seen: map[string]bool{}})
	}
	if vh == nil {
		c.r.notConverted(vs.file, spec.field("virtualHost"), "missing: the VirtualService serves nothing")
	}
	vh.done()
	spec.done()
}

// hostnames converts virtualHost.domains. "*" (or none) is every hostname.
func (c *converter) hostnames(vh *node) []gwv1.Hostname {
	if vh == nil {
		return nil
	}
	var out []gwv1.Hostname
	for i, d := range vh.strs("domains") {
		field := fmt.Sprintf("%s[%d]", vh.field("domains"), i)
		if d == "*" {
			return nil
		}
		d = strings.ToLower(d) // hostnames match case-insensitively
		if h, port, ok := strings.Cut(d, ":"); ok {
			c.r.changed(vh.file, field, "%q: Gateway API hostnames have no port; the route serves %q on every port of its listener (Gloo matched the Host header with port %s)", d, h, port)
			d = h
		}
		if !validHostname(d) {
			c.r.notConverted(vh.file, field, "%q is not a Gateway API hostname (a DNS name, with at most a leading \"*.\"); Envoy's suffix and prefix wildcards have no equivalent", d)
			continue
		}
		if !slices.Contains(out, gwv1.Hostname(d)) {
			out = append(out, gwv1.Hostname(d))
		}
	}
	return out
}

// tlsListeners adds an HTTPS listener per hostname of a VirtualService with
// sslConfig and returns their names.
func (c *converter) tlsListeners(vs *object, ssl *node, hosts []gwv1.Hostname) []string {
	ref := ssl.child("secretRef")
	if ref == nil {
		c.r.notConverted(vs.file, ssl.path, "only sslConfig.secretRef (a Kubernetes TLS Secret) converts; the VirtualService is served on the HTTP listener")
		ssl.skip("sslFiles", "sds", "sniDomains", "verifySubjectAltName", "parameters", "alpnProtocols", "oneWayTls", "disableTlsSessionResumption", "transportSocketConnectTimeout", "ocspStaplePolicy")
		return []string{listenerHTTP}
	}
	name, ns := ref.str("name"), ref.str("namespace")
	if ns == "" {
		ns = vs.namespace
	}
	ref.done()
	ssl.skip("sniDomains") // the listeners' hostnames are the domains
	ssl.done()
	kind := gwv1.Kind("Secret")
	secretNS := gwv1.Namespace(ns)
	certRef := gwv1.SecretObjectReference{Kind: &kind, Name: gwv1.ObjectName(name), Namespace: &secretNS}
	if ns != platformNS {
		if c.secretGrants[ns] == nil {
			c.secretGrants[ns] = map[string]bool{}
		}
		c.secretGrants[ns][name] = true
		c.namespaces[ns] = true
	}
	c.r.note(vs.file, ssl.field("secretRef"), "the certificate is never in Git: mount Secret %s/%s on every proxy host at /etc/gitxds/certs/%s/%s/tls.{crt,key}", ns, name, ns, name)
	if len(hosts) == 0 {
		hosts = []gwv1.Hostname{""}
	}
	var sections []string
	for _, h := range hosts {
		lname := "https"
		if h != "" {
			lname = "https-" + dnsLabel(strings.ReplaceAll(string(h), "*", "wildcard"))
		}
		dup := false
		for _, l := range c.https {
			if string(l.Name) == lname {
				dup = true
				if l.TLS.CertificateRefs[0].Name != certRef.Name || *l.TLS.CertificateRefs[0].Namespace != secretNS {
					c.r.notConverted(vs.file, ssl.path, "hostname %q already has an HTTPS listener with another certificate; this VirtualService shares it", h)
				}
			}
		}
		sections = append(sections, lname)
		if dup {
			continue
		}
		mode := gwv1.TLSModeTerminate
		l := gwv1.Listener{
			Name: gwv1.SectionName(lname), Port: gwv1.PortNumber(c.opts.HTTPSPort), Protocol: gwv1.HTTPSProtocolType,
			TLS:           &gwv1.ListenerTLSConfig{Mode: &mode, CertificateRefs: []gwv1.SecretObjectReference{certRef}},
			AllowedRoutes: allRoutes(),
		}
		if h != "" {
			hh := h
			l.Hostname = &hh
		}
		c.https = append(c.https, l)
	}
	return sections
}

func allRoutes() *gwv1.AllowedRoutes {
	from := gwv1.NamespacesFromAll
	return &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &from}}
}

// validHostname: a DNS name, optionally with a leading "*." (Gateway API's
// Hostname).
func validHostname(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 || strings.Contains(h, "*") {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// dnsLabel turns s into a lowercase DNS label (Kubernetes names, Gateway
// API section names).
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	if out == "" {
		out = "x"
	}
	return out
}
