package xds

import (
	"maps"
	"strings"
	"testing"
)

func TestNodeIdentityCheck(t *testing.T) {
	spiffe := "spiffe://example.org/rollout-group/{rollout-group}/node/{id}"
	cases := []struct {
		name     string
		ni       NodeIdentity
		id       string
		sans     []string
		want     map[string]string // pinned labels; nil when not pinned
		ident    string
		errMatch string
	}{
		{"id is a DNS SAN", NodeIdentity{Pattern: "{id}"}, "edge-1", []string{"edge-1"}, nil, "edge-1", ""},
		{"id is not a SAN", NodeIdentity{Pattern: "{id}"}, "edge-2", []string{"edge-1"}, nil, "", "does not match"},
		{"no certificate", NodeIdentity{Pattern: "{id}"}, "edge-1", nil, nil, "", "no verified client certificate"},
		{"SPIFFE with a label", NodeIdentity{Pattern: spiffe}, "edge-1",
			[]string{"spiffe://example.org/rollout-group/canary/node/edge-1"}, map[string]string{"rollout-group": "canary"},
			"spiffe://example.org/rollout-group/canary/node/edge-1", ""},
		{"SPIFFE of another node", NodeIdentity{Pattern: spiffe}, "edge-1",
			[]string{"spiffe://example.org/rollout-group/canary/node/edge-2"}, nil, "", "does not match"},
		{"a segment may not hold a slash", NodeIdentity{Pattern: spiffe}, "x",
			[]string{"spiffe://example.org/rollout-group/a/b/node/x"}, nil, "", "does not match"},
		{"the platform map adds labels", NodeIdentity{Pattern: "{id}", Labels: map[string]map[string]string{"edge-1": {"zone": "a"}}},
			"edge-1", []string{"edge-1"}, map[string]string{"zone": "a"}, "edge-1", ""},
		{"a map without certificates", NodeIdentity{Labels: map[string]map[string]string{"edge-1": {"rollout-group": "canary"}}},
			"edge-9", nil, map[string]string{}, "", ""},
	}
	for _, c := range cases {
		m, err := compileIdentity(&c.ni)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var p *peerIdentity
		if c.sans != nil {
			p = &peerIdentity{sans: c.sans}
		}
		ident, labels, err := m.check(c.id, p)
		if c.errMatch != "" {
			if err == nil || !strings.Contains(err.Error(), c.errMatch) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.errMatch)
			}
			continue
		}
		if err != nil || ident != c.ident || !maps.Equal(labels, c.want) || (labels == nil) != (c.want == nil) {
			t.Errorf("%s: %q %v %v; want %q %v", c.name, ident, labels, err, c.ident, c.want)
		}
	}
	for _, bad := range []string{"spiffe://example.org/node", "{id}/{id}"} {
		if err := (&NodeIdentity{Pattern: bad}).Validate(); err == nil {
			t.Errorf("pattern %q validates", bad)
		}
	}
}
