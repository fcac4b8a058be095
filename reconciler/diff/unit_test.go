package diff

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func prefix(p string, headers ...*routev3.HeaderMatcher) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}, Headers: headers}
}

func exactPath(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: p}}
}

func header(name, value string, ignoreCase bool) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value}, IgnoreCase: ignoreCase}}}
}

func TestOverlap(t *testing.T) {
	regex := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/a.*"}}}
	folded := exactPath("/CART")
	folded.CaseSensitive = wrapperspb.Bool(false)
	for _, c := range []struct {
		name string
		a, b *routev3.RouteMatch
		want bool
	}{
		{"same prefix", prefix("/"), prefix("/"), true},
		{"nested prefixes", prefix("/api"), prefix("/api/v1"), true},
		{"sibling prefixes", prefix("/api"), prefix("/web"), false},
		{"exact under prefix", exactPath("/api/x"), prefix("/api"), true},
		{"exact outside prefix", exactPath("/web"), prefix("/api"), false},
		{"different exact paths", exactPath("/a"), exactPath("/b"), false},
		{"case-insensitive exact", folded, exactPath("/cart"), true},
		{"regex is assumed to overlap", regex, exactPath("/b"), true},
		{"different header names", prefix("/", header("x-a", "1", false)), prefix("/", header("x-b", "1", false)), true},
		{"same header, other value", prefix("/", header("x-env", "blue", false)), prefix("/", header("X-Env", "green", false)), false},
		{"same header, case folded", prefix("/", header("x-env", "Blue", true)), prefix("/", header("x-env", "blue", false)), true},
		{"header against none", prefix("/", header("x-env", "blue", false)), prefix("/"), true},
	} {
		if got := overlap(c.a, c.b); got != c.want {
			t.Errorf("%s: overlap = %v, want %v", c.name, got, c.want)
		}
		if got := overlap(c.b, c.a); got != c.want {
			t.Errorf("%s (swapped): overlap = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestYAMLDiff: a weight shift reads as YAML lines, old side "-", new side
// "+", with context; no go-cmp or Go type names.
func TestYAMLDiff(t *testing.T) {
	a := &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "v1"}}}}
	b := &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
			WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
				{Name: "v1", Weight: wrapperspb.UInt32(20)}, {Name: "v2", Weight: wrapperspb.UInt32(80)}}}}}}}
	want := `  match:
    prefix: /
  route:
-   cluster: v1
+   weightedClusters:
+     clusters:
+     - name: v1
+       weight: 20
+     - name: v2
+       weight: 80
`
	if got := yamlDiff(a, b); got != want {
		t.Errorf("yamlDiff =\n%s\nwant\n%s", got, want)
	}
	if got := yamlDiff(nil, a); !strings.HasPrefix(got, "+ match:\n") {
		t.Errorf("yamlDiff(nil, a) =\n%s\nwant every line added", got)
	}
}

func TestShareSummary(t *testing.T) {
	a := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "v1"}}
	b := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
		Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: "v1", Weight: wrapperspb.UInt32(1)}, {Name: "v2", Weight: wrapperspb.UInt32(2)},
		}}}}
	if got, want := shareSummary(shares(a), shares(b)), "v1 100→33.3, v2 0→66.7"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestMarkdownFitsAComment: a diff too large for a pull-request comment
// keeps its whole table and leaves diffs out, with a note.
func TestMarkdownFitsAComment(t *testing.T) {
	var clusters []*clusterv3.Cluster
	for i := range 400 {
		clusters = append(clusters, &clusterv3.Cluster{
			Name:           fmt.Sprintf("team-%03d/backend-with-a-rather-long-name", i),
			ConnectTimeout: durationpb.New(5 * time.Second),
			LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: fmt.Sprint(i)},
		})
	}
	to := snapshot.New("to", map[snapshot.Class]*snapshot.Resources{snapshot.Envoy: {Clusters: clusters}})
	rep := Snapshots(nil, to)
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if len(md) > 65536 {
		t.Errorf("markdown is %d characters", len(md))
	}
	if !strings.Contains(md, "team-399/backend-with-a-rather-long-name") || !strings.Contains(md, "more diff(s) left out") {
		t.Errorf("want the whole table and a note on the diffs left out")
	}
}

// TestRouteChangeOncePerChange: one weight shift served by three classes
// under three route configurations (two ports) (and, for gRPC, with another timeout
// field) is one route change naming the classes (a Set without a scoped
// class serves the Envoy class's resources to it) and every listener.
func TestRouteChangeOncePerChange(t *testing.T) {
	route := func(timeout string, weights ...uint32) *routev3.Route {
		a := &routev3.RouteAction{}
		if len(weights) == 0 {
			a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "pay/v1"}
		} else {
			a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{
					{Name: "pay/v1", Weight: wrapperspb.UInt32(weights[0])}, {Name: "pay/v2", Weight: wrapperspb.UInt32(weights[1])}}}}
		}
		if timeout == "timeout" {
			a.Timeout = durationpb.New(5 * time.Second)
		} else {
			a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: durationpb.New(5 * time.Second)}
		}
		return &routev3.Route{Name: "pay/pay/rule/1/match/0",
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/refunds"}},
			Action: &routev3.Route_Route{Route: a}}
	}
	set := func(weights ...uint32) *snapshot.Set {
		rc := func(name, timeout string) *routev3.RouteConfiguration {
			return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
				Name: "pay.example.com", Domains: []string{"pay.example.com", "pay.example.com:8080"},
				Routes: []*routev3.Route{route(timeout, weights...)}}}}
		}
		return snapshot.New("r", map[snapshot.Class]*snapshot.Resources{
			snapshot.Envoy: {Routes: []*routev3.RouteConfiguration{rc("port-8080", "timeout"), rc("port-8443", "timeout")}},
			snapshot.GRPC:  {Routes: []*routev3.RouteConfiguration{rc("pay.example.com", "stream")}},
		})
	}
	rep := Snapshots(set(), set(20, 80))
	if len(rep.Changes) != 3 {
		t.Fatalf("want one xDS change per class and port, got %d", len(rep.Changes))
	}
	if len(rep.Routes) != 1 {
		t.Fatalf("want one route change, got %+v", rep.Routes)
	}
	got := rep.Routes[0]
	if want := "pay.example.com  PathPrefix /refunds  →  pay/v1 20%, pay/v2 80%  (was pay/v1 100%)"; got.Line() != want {
		t.Errorf("line\n %q\nwant\n %q", got.Line(), want)
	}
	if fmt.Sprint(got.Classes) != "[envoy envoy-scoped grpc]" || fmt.Sprint(got.Listeners) != "[pay.example.com port-8080 port-8443]" {
		t.Errorf("classes %v, listeners %v", got.Classes, got.Listeners)
	}
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "protocmp") || strings.Contains(b.String(), "routev3") {
		t.Errorf("markdown prints Go internals:\n%s", b.String())
	}
}

// TestObjectChanges: added, removed, changed and moved objects, with the
// file of each and whether the new side serves it.
func TestObjectChanges(t *testing.T) {
	obj := func(kind, name, file, yaml string) render.Object {
		return render.Object{Kind: kind, Namespace: "shop", Name: name, File: file, YAML: []byte(yaml)}
	}
	from := []render.Object{
		obj("HTTPRoute", "web", "teams/shop/web.yaml", "spec:\n  hostnames: [a]\n"),
		obj("HTTPRoute", "old", "teams/shop/old.yaml", "spec: {}\n"),
		obj("Backend", "web", "teams/shop/backends.yaml", "spec: {}\n"),
		obj("Backend", "same", "teams/shop/backends.yaml", "spec: {}\n"),
	}
	to := []render.Object{
		obj("HTTPRoute", "web", "teams/shop/web.yaml", "spec:\n  hostnames: [b]\n"),
		obj("HTTPRoute", "new", "teams/shop/new.yaml", "spec: {}\n"),
		obj("Backend", "web", "teams/shop/web.yaml", "spec: {}\n"),
		obj("Backend", "same", "teams/shop/backends.yaml", "spec: {}\n"),
	}
	st := []status.Object{{ObjectRef: ir.ObjectRef{Kind: "HTTPRoute", Namespace: "shop", Name: "new"}, Served: status.ServedNone,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "NotOwner"}}}}
	var got []string
	for _, c := range ObjectChanges(from, to, st) {
		got = append(got, fmt.Sprintf("%s %s %s was=%s served=%s diff=%q", c.Kind, c.Object, c.File, c.WasFile, c.Served, c.Diff))
	}
	want := []string{
		`added HTTPRoute shop/new teams/shop/new.yaml was= served=none diff=""`,
		`removed HTTPRoute shop/old teams/shop/old.yaml was= served= diff=""`,
		`changed Backend shop/web teams/shop/web.yaml was=teams/shop/backends.yaml served= diff=""`,
		`changed HTTPRoute shop/web teams/shop/web.yaml was= served= diff="  spec:\n-   hostnames: [a]\n+   hostnames: [b]\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
