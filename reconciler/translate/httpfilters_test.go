package translate

import (
	"os"
	"path/filepath"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// TestPolicyTouchesOnlyItsRoutes translates the extensions and global
// rate limit cases with and without their policies: every route the
// policies do not target is byte for byte the same, and every targeted
// route differs. (The listener's chain gains the policies' filters,
// disabled.)
func TestPolicyTouchesOnlyItsRoutes(t *testing.T) {
	for _, name := range []string{"extensions", "global-ratelimit"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name+".in.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			with, err := decodeIR(data)
			if err != nil {
				t.Fatal(err)
			}
			without, err := decodeIR(data)
			if err != nil {
				t.Fatal(err)
			}
			targeted := map[string]bool{}
			for gi := range without.Gateways {
				for li := range without.Gateways[gi].Listeners {
					for vi := range without.Gateways[gi].Listeners[li].VirtualHosts {
						rs := without.Gateways[gi].Listeners[li].VirtualHosts[vi].Routes
						for ri := range rs {
							if rs[ri].GlobalRateLimit != nil || len(rs[ri].Extensions) > 0 {
								targeted[rs[ri].Name] = true
							}
							rs[ri].GlobalRateLimit, rs[ri].Extensions = nil, nil
						}
					}
				}
			}
			if len(targeted) == 0 {
				t.Fatal("the case targets no route")
			}
			a, err := Translate(with, testRevision)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Translate(without, testRevision)
			if err != nil {
				t.Fatal(err)
			}
			routesA, routesB := envoyRoutes(a), envoyRoutes(b)
			if len(routesA) == 0 || len(routesA) != len(routesB) {
				t.Fatalf("%d routes with the policies, %d without", len(routesA), len(routesB))
			}
			for key, ra := range routesA {
				diff := cmp.Diff(routesB[key], ra, protocmp.Transform())
				switch {
				case targeted[ra.GetName()] && diff == "":
					t.Errorf("%s: the targeted route is unchanged", key)
				case !targeted[ra.GetName()] && diff != "":
					t.Errorf("%s: a route no policy targets changed:\n%s", key, diff)
				}
			}
		})
	}
}

// envoyRoutes are the routes of the Envoy class by route configuration
// and route name.
func envoyRoutes(set *snapshot.Set) map[string]*routev3.Route {
	out := map[string]*routev3.Route{}
	for _, rc := range set.Of(snapshot.Envoy).Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				out[rc.GetName()+" "+vh.GetName()+" "+r.GetName()] = r
			}
		}
	}
	return out
}
