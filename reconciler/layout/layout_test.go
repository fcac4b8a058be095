package layout

import "testing"

func TestOf(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Area
	}{
		{"teams/payments/routes.yaml", Area{Kind: Team, Team: "payments", Root: "teams/payments"}},
		{"teams/payments", Area{Kind: Team, Team: "payments", Root: "teams/payments"}},
		{"repo-layout/teams/shop/sub/x.yaml", Area{Kind: Team, Team: "shop", Root: "repo-layout/teams/shop"}},
		{"platform/gateways.yaml", Area{Kind: Platform, Root: "platform"}},
		{"repo-layout/platform", Area{Kind: Platform, Root: "repo-layout/platform"}},
		{"overlays/dev/kustomization.yaml", Area{Kind: Overlay, Root: "overlays"}},
		{"teams", Area{}},
		{"lib/common.yaml", Area{}},
		{"../teams/x/a.yaml", Area{}},
		{"/teams/x/a.yaml", Area{}},
		{"", Area{}},
	} {
		if got := Of(c.in); got != c.want {
			t.Errorf("Of(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestContains(t *testing.T) {
	a := Of("teams/search/steal")
	for p, want := range map[string]bool{
		"teams/search":               true,
		"teams/search/x.yaml":        true,
		"teams/search/steal/k.yaml":  true,
		"teams/searchx/a.yaml":       false,
		"teams/payments":             false,
		"teams":                      false,
		"teams/search/../payments/a": false,
	} {
		if got := a.Contains(p); got != want {
			t.Errorf("Contains(%q) = %v, want %v", p, got, want)
		}
	}
	if (Area{}).Contains("x") {
		t.Error("Other contains nothing")
	}
}
