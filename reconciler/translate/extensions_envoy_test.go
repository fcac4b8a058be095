package translate

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/testenv/envoy"
	"gitxds.dev/gitxds/testenv/ratelimit"
	"gitxds.dev/gitxds/testenv/upstream"
)

// TestEnvoyExtensions sends real requests through a real Envoy configured
// by gitxds (skipped without ENVOY_BIN): a global rate limit counted by
// testenv's rate limit service answers 429 past its limit; a Lua filter
// adds a response header on its route and not on the other route of the
// same listener; an EnvoyPatchPolicy's header is on every response of the
// patched route configuration. go -C tools tool task -d .. test-envoy
// runs it with Envoy.
func TestEnvoyExtensions(t *testing.T) {
	up, err := upstream.StartHTTP("app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	const port = 20900
	route := func(name, prefix string) ir.Route {
		return ir.Route{
			Name:     "a/" + name + "/rule/0/match/0",
			Owner:    ir.ObjectRef{Kind: "HTTPRoute", Namespace: "a", Name: name},
			Match:    ir.Match{PathType: ir.PathPrefix, Path: prefix},
			Backends: []ir.WeightedBackend{{Cluster: "a/app", Weight: 1}},
		}
	}
	limited := route("limited", "/limited")
	limited.GlobalRateLimit = &ir.GlobalRateLimit{
		Policy: ir.ObjectRef{Kind: "BackendTrafficPolicy", Namespace: "a", Name: "limits"},
		Rules:  []ir.GlobalRateLimitRule{{ID: "a/limits/0", Requests: 2, Unit: ir.UnitMinute}},
	}
	lua := route("lua", "/lua")
	lua.Extensions = []ir.Extension{{
		Policy: ir.ObjectRef{Kind: "EnvoyExtensionPolicy", Namespace: "platform", Name: "hello"},
		Lua: []ir.Lua{{Source: `function envoy_on_response(handle)
  handle:headers():add("x-lua", "hello")
end`}},
	}}
	plain := route("plain", "/")
	rlName := fmt.Sprintf("port-%d", port)
	x := &ir.IR{
		Gateways: []ir.Gateway{{
			Namespace: "platform", Name: "edge", PortRouteConfigs: true,
			RateLimit: &ir.RateLimitService{Cluster: "platform/ratelimit", FailureModeDeny: true},
			Listeners: []ir.Listener{{Name: "http", Port: port, Protocol: ir.HTTP, VirtualHosts: []ir.VirtualHost{{
				Hostname: "*", Routes: []ir.Route{limited, lua, plain},
			}}}},
		}},
		Clusters: []ir.Cluster{
			{Name: "a/app", Owner: ir.ObjectRef{Kind: "Backend", Namespace: "a", Name: "app"}, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: uint32(up.Port())}}},
			{Name: "platform/ratelimit", Owner: ir.ObjectRef{Kind: "Backend", Namespace: "platform", Name: "ratelimit"}, HTTP2: true},
		},
		Patches: []ir.PatchPolicy{{
			Policy: ir.ObjectRef{Kind: "EnvoyPatchPolicy", Namespace: "platform", Name: "patched"},
			Patches: []ir.JSONPatch{{Type: ir.PatchRouteConfiguration, Name: rlName,
				Operation: `{"op":"add","path":"/response_headers_to_add","value":[{"header":{"key":"x-patched","value":"yes"}}]}`}},
		}},
	}
	cfgYAML, err := RateLimitServiceConfig(x)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ratelimit.ParseConfig(cfgYAML)
	if err != nil {
		t.Fatal(err)
	}
	rls, err := ratelimit.Start(ratelimit.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rls.Close)
	var rlsPort uint32
	if _, err := fmt.Sscanf(rls.Addr, "127.0.0.1:%d", &rlsPort); err != nil {
		t.Fatal(err)
	}
	x.Clusters[1].Endpoints = []ir.Endpoint{{Address: "127.0.0.1", Port: rlsPort}}

	set, err := Translate(x, testRevision)
	if err != nil {
		t.Fatal(err)
	}
	set, perrs := ApplyPatches(x, set)
	if len(perrs) > 0 {
		t.Fatal(perrs)
	}
	// Everything above runs without Envoy too: the configuration, the
	// patch and the rate limit service's file are built and checked.
	bin := envoy.Require(t)
	runEnvoy(t, bin, set)

	get := func(path string) *http.Response {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
			if err == nil {
				resp.Body.Close()
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", path, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A global limit of 2 per minute: the third request is refused.
	for i, want := range []int{200, 200, 429} {
		if got := get("/limited").StatusCode; got != want {
			t.Errorf("GET /limited #%d: %d, want %d", i+1, got, want)
		}
	}
	if rls.Calls() < 3 {
		t.Errorf("the rate limit service saw %d calls, want 3", rls.Calls())
	}
	// The other routes are not limited and do not call the service.
	calls := rls.Calls()
	for i := 0; i < 3; i++ {
		if got := get("/").StatusCode; got != 200 {
			t.Errorf("GET / #%d: %d", i+1, got)
		}
	}
	if rls.Calls() != calls {
		t.Errorf("an unlimited route called the rate limit service")
	}
	// Lua on its route only.
	if r := get("/lua"); r.Header.Get("x-lua") != "hello" {
		t.Errorf("GET /lua: x-lua %q, want hello", r.Header.Get("x-lua"))
	}
	if r := get("/"); r.Header.Get("x-lua") != "" {
		t.Errorf("GET /: x-lua %q on a route without the policy", r.Header.Get("x-lua"))
	}
	// The patch's header is on every route of the route configuration.
	for _, p := range []string{"/", "/lua"} {
		if r := get(p); r.Header.Get("x-patched") != "yes" {
			t.Errorf("GET %s: x-patched %q, want yes", p, r.Header.Get("x-patched"))
		}
	}
}
