package gloo

import (
	"fmt"
	"net"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// backendOut is one Backend of the output and the policy of its connection
// settings.
type backendOut struct {
	ns, name  string
	endpoints []v1alpha1.BackendEndpoint
	policy    *v1alpha1.BackendTrafficPolicySpec
}

func (c *converter) addBackend(ns, name string, policy *v1alpha1.BackendTrafficPolicySpec, eps ...v1alpha1.BackendEndpoint) {
	c.backends[ns+"/"+name] = &backendOut{ns: ns, name: name, endpoints: eps, policy: policy}
	c.namespaces[ns] = true
}

// upstream converts an Upstream into a Backend (static hosts, or a
// Kubernetes Service by its DNS name) and a BackendTrafficPolicy with its
// connection settings.
func (c *converter) upstream(u *object) {
	s := u.spec
	defer s.done()
	s.skip("discoveryMetadata", "namespacedStatuses")
	var eps []v1alpha1.BackendEndpoint
	switch {
	case s.has("static"):
		st := s.child("static")
		for _, h := range st.list("hosts") {
			addr := h.str("addr")
			port, _ := h.num("port")
			h.unsupported("sniAddr", "SNI is not configured by gitxds")
			h.unsupported("healthCheckConfig", "per-host health check settings are not supported")
			h.unsupported("loadBalancingWeight", "per-host weights are not supported")
			h.unsupported("metadata", "per-host metadata is not supported")
			h.done()
			if net.ParseIP(addr) != nil {
				eps = append(eps, v1alpha1.BackendEndpoint{IP: &v1alpha1.IPEndpoint{Address: addr, Port: int32(port)}})
			} else {
				eps = append(eps, v1alpha1.BackendEndpoint{FQDN: &v1alpha1.FQDNEndpoint{Hostname: addr, Port: int32(port)}})
			}
		}
		if tls, _ := st.boolean("useTls"); tls {
			c.r.notConverted(st.file, st.field("useTls"), "TLS to the upstream is not supported by gitxds Backends; the converted Backend is reached in plain text")
		}
		st.skip("autoSniRewrite")
		st.unsupported("serviceSpec", "service specs (REST, gRPC) are not supported")
		st.done()
	case s.has("kube"):
		k := s.child("kube")
		svc, svcNS := k.str("serviceName"), k.str("serviceNamespace")
		port, _ := k.num("servicePort")
		if svcNS == "" {
			svcNS = u.namespace
		}
		host := fmt.Sprintf("%s.%s.svc.cluster.local", svc, svcNS)
		k.unsupported("selector", "the pod selector is not used: the Backend addresses the Service")
		k.unsupported("serviceSpec", "service specs (REST, gRPC) are not supported")
		k.unsupported("subsetSpec", "upstream subsets are not supported")
		k.done()
		c.r.changed(k.file, k.path, "Kubernetes Service %s/%s port %d becomes the DNS name %s: Envoy connects to the Service's cluster IP, not to its pods (no per-pod load balancing or outlier detection)", svcNS, svc, int(port), host)
		eps = append(eps, v1alpha1.BackendEndpoint{FQDN: &v1alpha1.FQDNEndpoint{Hostname: host, Port: int32(port)}})
	default:
		for _, k := range []string{"aws", "awsEc2", "azure", "consul", "pipe", "gcp"} {
			s.unsupported(k, "this upstream type is not supported; no Backend is written")
		}
		c.r.notConverted(u.file, s.path, "only static and kube upstreams convert; no Backend %s is written", u.key())
		return
	}
	if len(eps) == 0 {
		c.r.notConverted(u.file, s.path, "no endpoint; no Backend %s is written", u.key())
		return
	}
	c.addBackend(u.namespace, u.name, c.upstreamPolicy(s), eps...)
}

// upstreamPolicy converts an Upstream's connection settings.
func (c *converter) upstreamPolicy(s *node) *v1alpha1.BackendTrafficPolicySpec {
	p := &v1alpha1.BackendTrafficPolicySpec{}
	set := false
	if cc := s.child("connectionConfig"); cc != nil {
		if d, ok := cc.duration("connectTimeout"); ok {
			p.Timeout = &v1alpha1.Timeout{TCP: &v1alpha1.TCPTimeout{ConnectTimeout: &metav1.Duration{Duration: d}}}
			set = true
		}
		cc.done()
	}
	if cb := s.child("circuitBreakers"); cb != nil {
		p.CircuitBreaker = &v1alpha1.CircuitBreaker{
			MaxConnections: int64Of(cb, "maxConnections"), MaxPendingRequests: int64Of(cb, "maxPendingRequests"),
			MaxParallelRequests: int64Of(cb, "maxRequests"), MaxParallelRetries: int64Of(cb, "maxRetries"),
		}
		cb.done()
		set = true
	}
	if od := s.child("outlierDetection"); od != nil {
		o := &v1alpha1.OutlierDetection{}
		if v, ok := od.num("consecutive5xx"); ok {
			n := uint32(v)
			o.Consecutive5xxErrors = &n
		}
		if d, ok := od.duration("interval"); ok {
			o.Interval = &metav1.Duration{Duration: d}
		}
		if d, ok := od.duration("baseEjectionTime"); ok {
			o.BaseEjectionTime = &metav1.Duration{Duration: d}
		}
		if v, ok := od.num("maxEjectionPercent"); ok {
			n := int32(v)
			o.MaxEjectionPercent = &n
		}
		od.done()
		p.OutlierDetection = o
		set = true
	}
	for i, hc := range s.list("healthChecks") {
		if i > 0 {
			c.r.notConverted(hc.file, hc.path, "only the first health check converts")
			hc.skip(keysOf(hc.m)...)
			continue
		}
		h := hc.child("httpHealthCheck")
		if h == nil {
			c.r.notConverted(hc.file, hc.path, "only HTTP health checks convert")
			hc.skip(keysOf(hc.m)...)
			continue
		}
		a := &v1alpha1.ActiveHealthCheck{Type: v1alpha1.HTTPHealthCheck, HTTP: &v1alpha1.HTTPActiveHealthCheck{Path: h.str("path")}}
		h.unsupported("expectedStatuses", "expected status ranges are not converted; 200 is expected")
		h.unsupported("host", "the health check's Host header is not configured")
		h.done()
		if d, ok := hc.duration("interval"); ok {
			a.Interval = &metav1.Duration{Duration: d}
		}
		if d, ok := hc.duration("timeout"); ok {
			a.Timeout = &metav1.Duration{Duration: d}
		}
		if v, ok := hc.num("unhealthyThreshold"); ok {
			n := uint32(v)
			a.UnhealthyThreshold = &n
		}
		if v, ok := hc.num("healthyThreshold"); ok {
			n := uint32(v)
			a.HealthyThreshold = &n
		}
		hc.done()
		p.HealthCheck = &v1alpha1.HealthCheck{Active: a}
		set = true
	}
	if !set {
		return nil
	}
	return p
}

func int64Of(n *node, k string) *int64 {
	v, ok := n.num(k)
	if !ok {
		return nil
	}
	i := int64(v)
	return &i
}

func keysOf(m map[string]any) []string { return sortedKeys(m) }
