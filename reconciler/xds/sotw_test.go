package xds

import (
	"slices"
	"testing"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// withEndpointPort is set with one cluster's endpoints moved to port.
func withEndpointPort(set *snapshot.Set, rev, cluster string, port uint32) *snapshot.Set {
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range set.Classes {
		cp := *r
		cp.Endpoints = nil
		for _, e := range r.Endpoints {
			if e.GetClusterName() == cluster {
				e = assignment(cluster, port)
			}
			cp.Endpoints = append(cp.Endpoints, e)
		}
		classes[c] = &cp
	}
	return snapshot.New(rev, classes)
}

// A sotw EDS (or RDS) response carries only the resources that changed;
// a NACK of one is answered with the last good version of just that one,
// and the rejected version is never sent again.
func TestSotwSendsOnlyChangedResources(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"a", "b", "c"}})
	s.SetDefault(s1)
	n := connectSotw(t, addr, newFakeNode(t, "e", "envoy", nil))
	waitACK(t, s, s1, "e")
	first := n.responses()
	for _, r := range first {
		if r.TypeURL == eds && !sameSet(r.Names, "a", "b", "c") {
			t.Fatalf("first EDS = %v, want every assignment", r.Names)
		}
	}

	s2 := withEndpointPort(s1, "main@sha1:2", "b", 9100)
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
	got := n.responses()[len(first):]
	if order := typeOrder(got); !slices.Equal(order, []string{eds}) {
		t.Fatalf("one changed assignment sent %v", short(order))
	}
	if !sameSet(got[0].Names, "b") || got[0].Version != s2.Version(snapshot.Envoy, eds) {
		t.Fatalf("EDS response = %+v, want only b at s2's version", got[0])
	}
	if !n.runs(s2) {
		t.Fatal("node does not run s2")
	}

	s3 := withEndpointPort(s2, "main@sha1:3", "c", 9200)
	bad := s3.Version(snapshot.Envoy, eds)
	n.setReject(func(typ, v string) string {
		if typ == eds && v == bad {
			return "injected"
		}
		return ""
	})
	before := len(n.responses())
	s.SetDefault(s3)
	eventually(t, "node back on s2", func() bool {
		info, _ := s.Node("e")
		return info.Served == s2 && n.runs(s2) && len(n.responses()) >= before+2
	})
	got = n.responses()[before:]
	if len(got) != 2 || !sameSet(got[0].Names, "c") || got[0].Version != bad || !got[0].Rejected ||
		!sameSet(got[1].Names, "c") || got[1].Version != s2.Version(snapshot.Envoy, eds) {
		t.Fatalf("responses after s3 = %+v, want c at s3 (rejected), then c at s2", got)
	}
	if k := n.count(eds, bad); k != 1 {
		t.Errorf("the rejected version was sent %d times", k)
	}
}
