package ir

import (
	"errors"
	"testing"
)

// Validate guards the seam between model and translate: each invariant
// broken alone is reported with its sentinel error and the object named.
func TestValidate(t *testing.T) {
	valid := func() *IR {
		return &IR{
			Clusters: []Cluster{{Name: "shop/web", Endpoints: []Endpoint{{Address: "10.0.0.1", Port: 80}}}},
			Gateways: []Gateway{{Namespace: "platform", Name: "edge", Listeners: []Listener{{
				Name: "http", Port: 8080,
				VirtualHosts: []VirtualHost{{Routes: []Route{{Name: "r1", Backends: []WeightedBackend{{Cluster: "shop/web", Weight: 1}}}}}},
			}}}},
		}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid IR: %v", err)
	}
	for name, tc := range map[string]struct {
		breakIt func(*IR)
		want    error
	}{
		"port 0":          {func(x *IR) { x.Gateways[0].Listeners[0].Port = 0 }, ErrListenerPortInvalid},
		"port 65536":      {func(x *IR) { x.Gateways[0].Listeners[0].Port = 65536 }, ErrListenerPortInvalid},
		"no action":       {func(x *IR) { x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Backends = nil }, ErrRouteNoAction},
		"unknown cluster": {func(x *IR) { x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Backends[0].Cluster = "nope" }, ErrUnknownCluster},
		"mirror unknown": {func(x *IR) {
			x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Filters.Mirrors = []Mirror{{Cluster: "nope"}}
		}, ErrUnknownCluster},
		"cluster no hosts": {func(x *IR) { x.Clusters[0].Endpoints = nil }, ErrClusterNoEndpoints},
		"auth service unknown": {func(x *IR) {
			x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Security = &Security{Name: "a/p", ExtAuth: &ExtAuth{Cluster: "nope"}}
		}, ErrUnknownCluster},
		"JWKS host unknown": {func(x *IR) {
			x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Security = &Security{Name: "a/p", JWT: &JWT{Providers: []JWTProvider{{Name: "p", RemoteJWKS: &RemoteJWKS{Cluster: "nope"}}}}}
		}, ErrUnknownCluster},
		"ext_proc unknown": {func(x *IR) {
			x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Extensions = []Extension{{ExtProc: []ExtProc{{Cluster: "nope"}}}}
		}, ErrUnknownCluster},
		"wasm host unknown": {func(x *IR) {
			x.Gateways[0].Listeners[0].VirtualHosts[0].Routes[0].Extensions = []Extension{{Wasm: []Wasm{{Name: "w", URL: "http://h/w.wasm", Cluster: "nope"}}}}
		}, ErrUnknownCluster},
		"rate limit service unknown": {func(x *IR) {
			x.Gateways[0].RateLimit = &RateLimitService{Cluster: "nope"}
		}, ErrUnknownCluster},
	} {
		x := valid()
		tc.breakIt(x)
		if err := x.Validate(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func TestObjectRefString(t *testing.T) {
	if got := (ObjectRef{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}).String(); got != "HTTPRoute shop/web" {
		t.Errorf("namespaced: %q", got)
	}
	if got := (ObjectRef{Kind: "Namespace", Name: "shop"}).String(); got != "Namespace shop" {
		t.Errorf("cluster-scoped: %q", got)
	}
}
