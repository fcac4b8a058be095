package diff

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"gitxds.dev/gitxds/reconciler/snapshot"

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
