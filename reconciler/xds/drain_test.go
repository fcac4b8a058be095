package xds

import (
	"fmt"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

const srds = resource.ScopedRouteType

var fiveTypes = []string{cds, eds, lds, srds, rds}

// scopedSet is a Set whose Envoy class has one scope and one route
// configuration per hostname (as translate builds for a port of exact
// hostnames).
func scopedSet(rev string, hosts ...string) *snapshot.Set {
	base := buildSet(spec{rev: rev})
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range base.Classes {
		cp := *r
		if c == snapshot.Envoy {
			cp.Routes = append([]*routev3.RouteConfiguration(nil), r.Routes...)
			cp.ScopedRoutes = nil
			for _, h := range hosts {
				name := "port-8080/http/" + h
				cp.Routes = append(cp.Routes, routeConfig(name, []string{h}, "backend", time.Second))
				cp.ScopedRoutes = append(cp.ScopedRoutes, &routev3.ScopedRouteConfiguration{
					Name: name, RouteConfigurationName: name,
					Key: &routev3.ScopedRouteConfiguration_Key{Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{
						{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: h}},
						{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: "8080"}},
					}},
				})
			}
		}
		classes[c] = &cp
	}
	return snapshot.New(rev, classes)
}

// holdsName reports whether n holds the resource of typeURL named name.
func holdsName(n *fleetsim.Node, typeURL, name string) bool {
	_, ok := n.Held(typeURL, name)
	return ok
}

// A scope the new Set drops is still served, with its route
// configuration, for ScopeDrain, then removed; the node counts as running
// the new Set meanwhile (WaitACK returns), and NodeInfo says what drains.
func TestScopeKeptForDrain(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			const drain = 300 * time.Millisecond
			s, addr := startServerOpts(t, Options{ScopeDrain: drain})
			s1 := scopedSet("main@sha1:1", "a.example.com", "b.example.com")
			s.SetDefault(s1)
			fn := nodeOpts("e", "envoy", nil)
			fn.Types = fiveTypes
			var n *fleetsim.Node
			if delta {
				n = connectDelta(t, addr, fn, nil)
			} else {
				n = connectSotw(t, addr, fn)
			}
			waitACK(t, s, s1, "e")
			gone := "port-8080/http/b.example.com"

			s2 := scopedSet("main@sha1:2", "a.example.com")
			s.SetDefault(s2)
			waitACK(t, s, s2, "e")
			info, _ := s.Node("e")
			if _, ok := info.Draining[gone]; !ok {
				t.Fatalf("draining %v, want %s", info.Draining, gone)
			}
			if !delta && (!holdsName(n, srds, gone) || !holdsName(n, rds, gone)) {
				t.Fatalf("the node lost the removed scope or its routes at once")
			}
			removed := func() bool {
				if delta {
					for _, r := range n.Log() {
						for _, name := range r.Removed {
							if r.TypeURL == srds && name == gone {
								return true
							}
						}
					}
					return false
				}
				return !holdsName(n, srds, gone)
			}
			if removed() {
				t.Fatal("scope removed before its drain time")
			}
			eventually(t, "scope removed after its drain time", removed)
			eventually(t, "drain over", func() bool { info, _ := s.Node("e"); return len(info.Draining) == 0 })
			waitACK(t, s, s2, "e")
			if !delta && !holdsName(n, srds, "port-8080/http/a.example.com") {
				t.Error("the kept scope is gone")
			}
		})
	}
}

// With ScopeDrain negative a dropped scope goes at once.
func TestScopeDrainOff(t *testing.T) {
	s, addr := startServerOpts(t, Options{ScopeDrain: -1})
	s1 := scopedSet("main@sha1:1", "a.example.com", "b.example.com")
	s.SetDefault(s1)
	fn := nodeOpts("e", "envoy", nil)
	fn.Types = fiveTypes
	n := connectSotw(t, addr, fn)
	waitACK(t, s, s1, "e")
	s2 := scopedSet("main@sha1:2", "a.example.com")
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
	if holdsName(n, srds, "port-8080/http/b.example.com") || n.AcceptedVersion(srds) != s2.Version(snapshot.Envoy, srds) {
		t.Fatal("scope kept with draining off")
	}
}

// A hostname added back while its scope drains ends the drain: one scope
// per key (Envoy refuses two), the new one.
func TestScopeReaddedEndsDrain(t *testing.T) {
	s, addr := startServerOpts(t, Options{ScopeDrain: time.Hour})
	s1 := scopedSet("main@sha1:1", "a.example.com", "b.example.com")
	s.SetDefault(s1)
	fn := nodeOpts("e", "envoy", nil)
	fn.Types = fiveTypes
	n := connectSotw(t, addr, fn)
	waitACK(t, s, s1, "e")
	s2 := scopedSet("main@sha1:2", "a.example.com")
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
	s3 := scopedSet("main@sha1:3", "a.example.com", "b.example.com")
	s.SetDefault(s3)
	waitACK(t, s, s3, "e")
	if info, _ := s.Node("e"); len(info.Draining) != 0 {
		t.Fatalf("draining %v after the hostname came back", info.Draining)
	}
	if n.AcceptedVersion(srds) != s3.Version(snapshot.Envoy, srds) {
		t.Fatal("the node is not at s3's scope list")
	}
}

// A new scope's route configuration is served with the scope list that
// adds it: the node's request for it, sent before it ACKs the scope list,
// is answered without waiting for that ACK (Envoy serves a new scope with
// an empty route table until its route configuration arrives).
func TestScopeAddedWithItsRoutes(t *testing.T) {
	s, addr := startServerOpts(t, Options{ScopeDrain: -1})
	s1 := scopedSet("main@sha1:1", "a.example.com")
	s.SetDefault(s1)
	// The node asks for scoped routes as Envoy does: CDS, EDS, LDS and
	// SRDS wildcard, and RDS for the route configurations its scopes name
	// (fleetsim's FollowScopes).
	o := nodeOpts("e", "envoy", nil)
	o.Types, o.FollowScopes = []string{cds, eds, lds, srds}, true
	n := connectSotw(t, addr, o)
	eventually(t, "s1's scopes ACKed", func() bool { return n.AcceptedVersion(srds) == s1.Version(snapshot.Envoy, srds) })
	s2 := scopedSet("main@sha1:2", "a.example.com", "b.example.com")
	s.SetDefault(s2)
	eventually(t, "s2's scopes ACKed (with their routes)", func() bool { return n.AcceptedVersion(srds) == s2.Version(snapshot.Envoy, srds) })
	waitACK(t, s, s2, "e")
}
