package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"gitxds.dev/gitxds/reconciler/ir"
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

// TestGlobalRateLimitClaims: a JWT claim reads the payload of the route's
// own policy's provider; a route whose security lacks the provider is an
// error, never a rule that silently counts nothing.
func TestGlobalRateLimitClaims(t *testing.T) {
	g := &ir.GlobalRateLimit{Rules: []ir.GlobalRateLimitRule{{ID: "a/p/0", Requests: 1, Unit: ir.UnitSecond,
		JWTClaims: []ir.RateLimitJWTClaim{{Provider: "corp", Claim: "org.tier", Value: "gold"}}}}}
	sec := &ir.Security{Name: "a/s", JWT: &ir.JWT{Providers: []ir.JWTProvider{{Name: "corp"}}}}
	other := &ir.Security{Name: "a/t", JWT: &ir.JWT{Providers: []ir.JWTProvider{{Name: "partner"}}}}
	for _, s := range []*ir.Security{nil, {Name: "a/u"}, other} {
		if _, err := globalRateLimit(g, s); err == nil {
			t.Errorf("security %v: no error", s)
		}
	}
	a, err := globalRateLimit(g, sec)
	if err != nil {
		t.Fatal(err)
	}
	pr := &ratelimitv3.RateLimitPerRoute{}
	if err := a.UnmarshalTo(pr); err != nil {
		t.Fatal(err)
	}
	md := pr.GetRateLimits()[0].GetActions()[1].GetMetadata()
	var path []string
	for _, p := range md.GetMetadataKey().GetPath() {
		path = append(path, p.GetKey())
	}
	if md.GetMetadataKey().GetKey() != jwtMetadataNamespace || strings.Join(path, "|") != jwtProviderName(sec, "corp")+"|org|tier" ||
		md.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC || md.GetDescriptorKey() != claimDescriptorKey("org.tier") {
		t.Errorf("metadata action %v", md)
	}
}
