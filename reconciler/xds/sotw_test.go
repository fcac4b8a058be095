package xds

import (
	"fmt"
	"slices"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
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
// a NACK is answered with the last good version of every subscribed
// resource (what the node kept of a rejected response is unknown), and the
// rejected version is never sent again.
func TestSotwSendsOnlyChangedResources(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"a", "b", "c"}})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	first := n.Log()
	for _, r := range first {
		if r.TypeURL == eds && !sameSet(r.Names, "a", "b", "c") {
			t.Fatalf("first EDS = %v, want every assignment", r.Names)
		}
	}

	s2 := withEndpointPort(s1, "main@sha1:2", "b", 9100)
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
	got := n.Log()[len(first):]
	if order := typeOrder(got); !slices.Equal(order, []string{eds}) {
		t.Fatalf("one changed assignment sent %v", short(order))
	}
	if !sameSet(got[0].Names, "b") || got[0].Version != s2.Version(snapshot.Envoy, eds) {
		t.Fatalf("EDS response = %+v, want only b at s2's version", got[0])
	}
	if !n.Runs(s2) {
		t.Fatal("node does not run s2")
	}

	s3 := withEndpointPort(s2, "main@sha1:3", "c", 9200)
	bad := s3.Version(snapshot.Envoy, eds)
	n.Reject(func(typ, v string) string {
		if typ == eds && v == bad {
			return "injected"
		}
		return ""
	})
	before := len(n.Log())
	s.SetDefault(s3)
	eventually(t, "node back on s2", func() bool {
		info, _ := s.Node("e")
		return info.Served == s2 && n.Runs(s2) && len(n.Log()) >= before+2
	})
	got = n.Log()[before:]
	// After a NACK the server cannot know which of the rejected
	// resources the node kept: the way back sends all of them.
	if len(got) != 2 || !sameSet(got[0].Names, "c") || got[0].Version != bad || !got[0].Rejected ||
		!sameSet(got[1].Names, "a", "b", "c") || got[1].Version != s2.Version(snapshot.Envoy, eds) {
		t.Fatalf("responses after s3 = %+v, want c at s3 (rejected), then a, b, c at s2", got)
	}
	if k := n.Responses(eds, bad); k != 1 {
		t.Errorf("the rejected version was sent %d times", k)
	}
}

// A node that needs more than maxResponseBytes of route configurations
// gets them in parts, one per ACK, in sotw and in delta; only the last
// carries the type's version, so the node runs the Set only once it holds
// all of it.
func TestSotwLargeResponseInParts(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) { testLargeResponseInParts(t, delta) })
	}
}

func testLargeResponseInParts(t *testing.T, delta bool) {
	s, addr := startServer(t)
	base := buildSet(spec{rev: "main@sha1:1"})
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range base.Classes {
		cp := *r
		cp.Routes = append([]*routev3.RouteConfiguration(nil), r.Routes...)
		if c == snapshot.Envoy {
			for i := 0; i < 100; i++ {
				domains := make([]string, 50)
				for j := range domains {
					domains[j] = fmt.Sprintf("host-%03d-%03d.example.com", i, j)
				}
				cp.Routes = append(cp.Routes, routeConfig(fmt.Sprintf("extra-%03d", i), domains, "backend", time.Second))
			}
		}
		classes[c] = &cp
	}
	s1 := snapshot.New("main@sha1:1", classes)
	s.SetDefault(s1)
	var n *fleetsim.Node
	if delta {
		n = connectDelta(t, addr, nodeOpts("e", "envoy", nil), nil)
	} else {
		n = connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	}
	waitACK(t, s, s1, "e")
	var parts []fleetsim.Response
	names := map[string]bool{}
	for _, r := range n.Log() {
		if r.TypeURL == rds {
			parts = append(parts, r)
			for _, name := range r.Names {
				if names[name] {
					t.Errorf("%s sent twice", name)
				}
				names[name] = true
			}
		}
	}
	if len(parts) < 2 || len(names) != 101 {
		t.Fatalf("%d RDS responses with %d route configurations; want several parts with all 101", len(parts), len(names))
	}
	whole := s1.Version(snapshot.Envoy, rds)
	for i, p := range parts {
		if last := i == len(parts)-1; (p.Version == whole) != last {
			t.Errorf("part %d of %d has version %s (whole %s)", i+1, len(parts), p.Version, whole)
		}
	}
	if !delta && !n.Runs(s1) {
		t.Error("node does not run s1")
	}
}

// A node without a last good Set that NACKs a part of a response is sent
// no further part of that version; the next Set reaches it whole, though
// the stream had been sent some of its resources before.
func TestSotwNACKOfAPartHolds(t *testing.T) {
	s, addr := startServer(t)
	big := func(rev string, timeout time.Duration) *snapshot.Set {
		base := buildSet(spec{rev: rev})
		classes := map[snapshot.Class]*snapshot.Resources{}
		for c, r := range base.Classes {
			cp := *r
			cp.Routes = append([]*routev3.RouteConfiguration(nil), r.Routes...)
			if c == snapshot.Envoy {
				for i := 0; i < 100; i++ {
					domains := make([]string, 120) // 3 parts of 96 KB
					for j := range domains {
						domains[j] = fmt.Sprintf("host-%03d-%03d.example.com", i, j)
					}
					cp.Routes = append(cp.Routes, routeConfig(fmt.Sprintf("extra-%03d", i), domains, "backend", timeout))
				}
			}
			classes[c] = &cp
		}
		return snapshot.New(rev, classes)
	}
	s1 := big("main@sha1:1", time.Second)
	o := nodeOpts("e", "envoy", nil)
	rdsSeen := 0
	o.Reject = func(typ, v string) string {
		if typ == rds {
			rdsSeen++
			if rdsSeen == 2 {
				return "injected: part 2"
			}
		}
		return ""
	}
	n := connectSotw(t, addr, o)
	s.SetDefault(s1)
	rdsResponses := func() (k int) {
		for _, r := range n.Log() {
			if r.TypeURL == rds {
				k++
			}
		}
		return k
	}
	eventually(t, "the NACK of part 2", func() bool { return rdsResponses() >= 2 })
	time.Sleep(200 * time.Millisecond)
	if after := rdsResponses(); after != 2 {
		t.Fatalf("%d RDS responses, want 2: none after the rejected part", after)
	}
	if info, _ := s.Node("e"); info.LastGood != nil {
		t.Fatalf("last good %v after a NACK of the first Set", info.LastGood.Revision)
	}

	s2 := big("main@sha1:2", 2*time.Second)
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
	if !n.Runs(s2) {
		t.Fatal("node does not run s2")
	}
}
