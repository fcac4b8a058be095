package discovery

import (
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func b(v bool) *bool     { return &v }
func s(v string) *string { return &v }
func p(v int32) *int32   { return &v }
func cond(r, sv, t *bool) discoveryv1.EndpointConditions {
	return discoveryv1.EndpointConditions{Ready: r, Serving: sv, Terminating: t}
}

func slice(typ discoveryv1.AddressType, port *discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{AddressType: typ, Endpoints: eps}
	if port != nil {
		sl.Ports = []discoveryv1.EndpointPort{*port}
	}
	return sl
}

func ep(c discoveryv1.EndpointConditions, addrs ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: addrs, Conditions: c}
}

// TestEndpoints: conditions become Envoy health statuses (ready HEALTHY,
// serving and terminating DRAINING, neither left out; unset conditions
// as the API defines them), the Service port's name selects the slice
// port, an unknown Service falls back to the port number, addresses the
// policy denies and FQDN slices are left out, and an address listed
// twice is served once, ready winning.
func TestEndpoints(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80}, {Name: "grpc", Port: 8080},
	}}}
	httpPort := &discoveryv1.EndpointPort{Name: s("http"), Port: p(9000)}
	grpcPort := &discoveryv1.EndpointPort{Name: s("grpc"), Port: p(9001)}
	slices := []*discoveryv1.EndpointSlice{
		slice(discoveryv1.AddressTypeIPv4, httpPort,
			ep(cond(b(true), b(true), b(false)), "10.0.0.1"),
			ep(cond(nil, nil, nil), "10.0.0.2"),               // unset: ready
			ep(cond(b(false), b(true), b(true)), "10.0.0.3"),  // draining
			ep(cond(b(false), b(false), b(true)), "10.0.0.4"), // gone
			ep(cond(b(false), nil, nil), "10.0.0.5"),          // not ready, serving unset: not serving
			ep(cond(b(true), nil, nil), "169.254.0.1"),        // denied
			ep(cond(b(false), b(true), b(true)), "10.0.0.1"),  // a second copy, draining: ready wins
		),
		slice(discoveryv1.AddressTypeIPv6, httpPort, ep(cond(b(true), nil, nil), "fd00::1")),
		slice(discoveryv1.AddressTypeIPv4, grpcPort, ep(cond(b(true), nil, nil), "10.0.1.1")),
		slice(discoveryv1.AddressTypeFQDN, httpPort, ep(cond(b(true), nil, nil), "web.example.com")),
		slice(discoveryv1.AddressTypeIPv4, nil, ep(cond(b(true), nil, nil), "10.0.2.1")), // no ports yet
	}
	deny := func(a netip.Addr) string {
		if a.IsLinkLocalUnicast() {
			return "link-local"
		}
		return ""
	}
	H, D := corev3.HealthStatus_HEALTHY, corev3.HealthStatus_DRAINING
	for _, tc := range []struct {
		name string
		port uint32
		svc  *corev1.Service
		want []Endpoint
	}{
		{"port 80 by its name http", 80, svc, []Endpoint{
			{"10.0.0.1", 9000, H}, {"10.0.0.2", 9000, H}, {"10.0.0.3", 9000, D}, {"fd00::1", 9000, H}}},
		{"port 8080 by its name grpc", 8080, svc, []Endpoint{{"10.0.1.1", 9001, H}}},
		{"a port the Service does not have", 81, svc, []Endpoint{}},
		{"no Service: the slice port of that number", 9001, nil, []Endpoint{{"10.0.1.1", 9001, H}}},
		{"no Service, no such slice port", 80, nil, []Endpoint{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Endpoints(tc.port, tc.svc, slices, deny)
			if got == nil {
				got = []Endpoint{}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}

// TestAssignmentEmpty: a Service without endpoints is an assignment
// without localities, never nil.
func TestAssignmentEmpty(t *testing.T) {
	cla := Assignment("service:a/web:80", 80, nil, nil, nil)
	if cla == nil || cla.GetClusterName() != "service:a/web:80" || len(cla.GetEndpoints()) != 0 {
		t.Fatalf("got %v", cla)
	}
	if err := cla.ValidateAll(); err != nil {
		t.Fatal(err)
	}
}

// TestAppProtocol: the appProtocol of the Service port the cluster is.
func TestAppProtocol(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Port: 80, AppProtocol: s(AppProtocolWS)}, {Port: 8080, AppProtocol: s(AppProtocolH2C)}, {Port: 9000},
	}}}
	for port, want := range map[uint32]string{80: AppProtocolWS, 8080: AppProtocolH2C, 9000: "", 1: ""} {
		if got := AppProtocol(port, svc); got != want {
			t.Errorf("port %d: %q, want %q", port, got, want)
		}
	}
	if got := AppProtocol(80, nil); got != "" {
		t.Errorf("no Service: %q", got)
	}
}
