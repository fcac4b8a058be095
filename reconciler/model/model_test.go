package model

import (
	"fmt"
	"reflect"
	"testing"

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
