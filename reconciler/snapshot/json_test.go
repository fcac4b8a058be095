package snapshot

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	a := &anypb.Any{Value: b}
	a.TypeUrl = "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
	return a
}

// testSet builds a Set whose Envoy and gRPC classes share cluster "shared"
// with different timeouts, so the clash rule is visible.
func testSet(t *testing.T) *Set {
	t.Helper()
	router := mustAny(t, &routerv3.Router{})
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "rc",
			ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	}
	meta, _ := structpb.NewStruct(map[string]any{"b": "2", "a": 1.5, "c": []any{"x", true}})
	cluster := func(name string, d int64) *clusterv3.Cluster {
		return &clusterv3.Cluster{
			Name:                          name,
			ConnectTimeout:                durationpb.New(time.Duration(d) * time.Second),
			ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			PerConnectionBufferLimitBytes: wrapperspb.UInt32(uint32(d)),
			Metadata:                      &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"gitxds": meta}},
		}
	}
	envoy := &Resources{
		Listeners: []*listenerv3.Listener{{
			Name: "http-80",
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}},
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)},
			}}}},
		}},
		Routes: []*routev3.RouteConfiguration{{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: []*routev3.Route{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "^/a<b>&c$"}}},
		}}}}}},
		Clusters:  []*clusterv3.Cluster{cluster("shared", 1), cluster("b-envoy", 3)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{{ClusterName: "shared"}},
	}
	grpc := &Resources{
		Listeners: []*listenerv3.Listener{{Name: "api.example:80", ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm)}}},
		Routes:    []*routev3.RouteConfiguration{{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{Name: "other", Domains: []string{"api"}}}}},
		Clusters:  []*clusterv3.Cluster{cluster("shared", 2), cluster("a-grpc", 4)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{{ClusterName: "shared"}, {ClusterName: "a-grpc"}},
	}
	return New("main@sha1:0123456789012345678901234567890123456789", map[Class]*Resources{Envoy: envoy, GRPC: grpc})
}

func TestMarshalRoundTrip(t *testing.T) {
	set := testSet(t)
	b, err := Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != set.Hash() {
		t.Fatalf("hash after round trip = %s, want %s", got.Hash(), set.Hash())
	}
	if got.Revision != set.Revision {
		t.Fatalf("revision = %q, want %q", got.Revision, set.Revision)
	}
	for _, c := range Classes {
		for _, typ := range TypeURLs {
			if got.Version(c, typ) != set.Version(c, typ) {
				t.Errorf("%s %s: version %s, want %s", c, typ, got.Version(c, typ), set.Version(c, typ))
			}
		}
	}
	again, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("second marshal differs:\n%s\n---\n%s", b, again)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      `{`,
		"wrong format":  `{"format":"other","revision":"r","classes":{}}`,
		"unknown field": `{"format":"` + Format + `","bogus":1}`,
		"bad resource":  `{"format":"` + Format + `","classes":{"envoy":{"listeners":[{"nope":1}]}}}`,
		"bad any type":  `{"format":"` + Format + `","classes":{"envoy":{"listeners":[{"apiListener":{"apiListener":{"@type":"type.googleapis.com/no.Such"}}}]}}}`,
	} {
		if _, err := Unmarshal([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRenderJSON(t *testing.T) {
	set := testSet(t)
	first, err := RenderJSON(set)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, err := RenderJSON(testSet(t))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("render %d differs", i)
		}
	}
	if !strings.HasPrefix(string(first), "{\n  \"revision\": \"main@sha1:") {
		t.Fatalf("output does not start with the revision:\n%s", first)
	}
	var out struct {
		Revision  string                       `json:"revision"`
		Listeners []map[string]json.RawMessage `json:"listeners"`
		Routes    []map[string]json.RawMessage `json:"routes"`
		Clusters  []map[string]json.RawMessage `json:"clusters"`
		Endpoints []map[string]json.RawMessage `json:"endpoints"`
	}
	if err := json.Unmarshal(first, &out); err != nil {
		t.Fatal(err)
	}
	names := func(items []map[string]json.RawMessage, key string) []string {
		var ns []string
		for _, it := range items {
			var n string
			_ = json.Unmarshal(it[key], &n)
			ns = append(ns, n)
		}
		return ns
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("listeners", names(out.Listeners, "name"), "api.example:80", "http-80")
	check("routes", names(out.Routes, "name"), "rc")
	check("clusters", names(out.Clusters, "name"), "a-grpc", "b-envoy", "shared")
	check("endpoints", names(out.Endpoints, "clusterName"), "a-grpc", "shared")
	check("@type", names(out.Clusters[:1], "@type"), "type.googleapis.com/envoy.config.cluster.v3.Cluster")
	// Envoy wins the clash on "shared" (buffer limit 1) and on route "rc".
	if got := string(out.Clusters[2]["perConnectionBufferLimitBytes"]); got != "1" {
		t.Errorf("shared cluster from the wrong class: perConnectionBufferLimitBytes=%s", got)
	}
	if !strings.Contains(string(out.Routes[0]["virtualHosts"]), `"vh"`) {
		t.Errorf("route rc from the wrong class: %s", out.Routes[0]["virtualHosts"])
	}
	if !strings.Contains(string(first), `"regex": "^/a<b>&c$"`) {
		t.Errorf("regex escaped:\n%s", first)
	}
	if !strings.Contains(string(first), `"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"`) {
		t.Errorf("nested Any not expanded:\n%s", first)
	}
}
