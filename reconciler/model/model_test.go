package model

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

func TestOwnerOf(t *testing.T) {
	for _, tc := range []struct {
		file string
		team string
		ok   bool
	}{
		{"teams/a/routes.yaml", "a", true},
		{"repo-layout/teams/shop/x/routes.yaml", "shop", true},
		{"platform/gateways.yaml", "", true},
		{"repo-layout/platform/gateways.yaml", "", true},
		{"teams/a/platform/gw.yaml", "a", true},
		{"teams/routes.yaml", "", false},
		{"overlays/dev/extra.yaml", "", false},
		{"/etc/passwd", "", false},
		{"../teams/a/x.yaml", "", false},
		{"", "", false},
		{"platform", "", false},
	} {
		team, ok := ownerOf(tc.file)
		if team != tc.team || ok != tc.ok {
			t.Errorf("ownerOf(%q) = %q, %v; want %q, %v", tc.file, team, ok, tc.team, tc.ok)
		}
	}
}

func TestIntersect(t *testing.T) {
	for _, tc := range []struct {
		listener string
		route    []string
		want     []string
	}{
		{"", nil, []string{"*"}},
		{"a.example.com", nil, []string{"a.example.com"}},
		{"", []string{"a.example.com"}, []string{"a.example.com"}},
		{"a.example.com", []string{"a.example.com", "b.example.com"}, []string{"a.example.com"}},
		{"*.example.com", []string{"a.example.com", "a.b.example.com", "example.com"}, []string{"a.example.com", "a.b.example.com"}},
		{"*.example.com", []string{"*.example.com"}, []string{"*.example.com"}},
		{"*.example.com", []string{"*.b.example.com"}, []string{"*.b.example.com"}},
		{"a.example.com", []string{"*.example.com"}, []string{"a.example.com"}},
		{"*.example.com", []string{"*.com"}, []string{"*.example.com"}},
		{"a.example.com", []string{"*.example.net"}, nil},
		{"*.example.com", []string{"a.example.com", "*.example.com", "a.example.com"}, []string{"a.example.com", "*.example.com"}},
	} {
		got := intersect(tc.listener, tc.route)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("intersect(%q, %q) = %q; want %q", tc.listener, tc.route, got, tc.want)
		}
	}
}

func TestRankOrder(t *testing.T) {
	// Each match must come before the next, as Gateway API orders them.
	ordered := []rank{
		{pathKind: 3, pathLen: 4},
		{pathKind: 2, pathLen: 10},
		{pathKind: 1, pathLen: 8},
		{pathKind: 1, pathLen: 4, method: true},
		{pathKind: 1, pathLen: 4, headers: 2},
		{pathKind: 1, pathLen: 4, headers: 1, query: 3},
		{pathKind: 1, pathLen: 4, headers: 1},
		{pathKind: 1, pathLen: 1},
	}
	for i := 0; i+1 < len(ordered); i++ {
		if before, ok := ordered[i].before(ordered[i+1]); !ok || !before {
			t.Errorf("rank %d (%+v) should come before %d (%+v)", i, ordered[i], i+1, ordered[i+1])
		}
		if before, ok := ordered[i+1].before(ordered[i]); !ok || before {
			t.Errorf("rank %d should not come before %d", i+1, i)
		}
	}
	if _, ok := ordered[0].before(ordered[0]); ok {
		t.Error("equal ranks must tie")
	}
}

func TestEmptyInput(t *testing.T) {
	out := Build(Input{})
	if out.IR == nil || len(out.IR.Gateways) != 0 || len(out.Status) != 0 || out.Rollout != nil {
		t.Errorf("Build(empty) = %+v", out)
	}
}

// TestMatchKeyFastPath: matchKey without fmt gives the string of the
// general format.
func TestMatchKeyFastPath(t *testing.T) {
	for _, m := range []ir.Match{
		{},
		{GRPC: true, PathType: ir.PathPrefix, Path: "/a|b", Method: "GET"},
		{PathType: ir.PathRegex, Path: "/x"},
		{PathType: ir.PathExact, Path: "/"},
	} {
		want := fmt.Sprintf("%v|%s|%s|%s|%v|%v", m.GRPC, m.PathType, m.Path, m.Method, sortedMatches(m.Headers), sortedMatches(m.Query))
		if got := matchKey(m); got != want {
			t.Errorf("matchKey(%+v) = %q, want %q", m, got, want)
		}
	}
}

// TestHeaderModifierRefusesHost (issue 15 finding 3): Envoy rejects the
// whole route table when a route sets, adds or removes Host, so the model
// refuses it, in any case, in every operation.
func TestHeaderModifierRefusesHost(t *testing.T) {
	for _, h := range []*gwv1.HTTPHeaderFilter{
		{Set: []gwv1.HTTPHeader{{Name: "Host", Value: "a.example.com"}}},
		{Add: []gwv1.HTTPHeader{{Name: "host", Value: "a.example.com"}}},
		{Remove: []string{"HOST"}},
	} {
		if _, msg := headerModifier(h); !strings.Contains(msg, "cannot be") || !strings.Contains(msg, "URLRewrite") {
			t.Errorf("%+v: message %q, want a refusal pointing at URLRewrite", h, msg)
		}
	}
	if _, msg := headerModifier(&gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "x-host", Value: "50%off"}}}); msg != "" {
		t.Errorf("x-host: %s", msg)
	}
}

// TestRetryAttemptsZero (finding 8): retry.attempts 0 is accepted and
// disables retries (an ir.Retry of 0 attempts, so no policy fills it in).
func TestRetryAttemptsZero(t *testing.T) {
	zero := 0
	r, msg := httpRetry(&gwv1.HTTPRouteRetry{Attempts: &zero})
	if msg != "" || r == nil || r.Attempts != 0 {
		t.Fatalf("attempts 0: %+v %q", r, msg)
	}
	neg := -1
	if _, msg := httpRetry(&gwv1.HTTPRouteRetry{Attempts: &neg}); msg == "" {
		t.Error("attempts -1 accepted")
	}
}

// TestRequestTimeoutZero (finding 7): timeouts.request "0s" disables the
// timeout, which a policy's request timeout does not replace.
func TestRequestTimeoutZero(t *testing.T) {
	zero := gwv1.Duration("0s")
	got, msg := httpTimeouts(&gwv1.HTTPRouteTimeouts{Request: &zero})
	if msg != "" || !got.NoRequestTimeout || got.Request != 0 {
		t.Fatalf("0s: %+v %q", got, msg)
	}
	ten := gwv1.Duration("10s")
	if got, _ := httpTimeouts(&gwv1.HTTPRouteTimeouts{Request: &ten}); got.NoRequestTimeout {
		t.Error("10s disables the timeout")
	}
}
