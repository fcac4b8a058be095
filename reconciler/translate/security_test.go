package translate

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

func securityCase(t *testing.T) *snapshot.Set {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "security.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := decodeIR(data)
	if err != nil {
		t.Fatal(err)
	}
	return mustTranslate(t, x)
}

// chainFilters are the HTTP filters of every HttpConnectionManager of a
// class, by listener name.
func chainFilters(t *testing.T, set *snapshot.Set, c snapshot.Class) map[string][]*hcmv3.HttpFilter {
	t.Helper()
	out := map[string][]*hcmv3.HttpFilter{}
	for _, l := range set.Classes[c].Listeners {
		cms, err := xdsres.ConnectionManagers(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, cm := range cms {
			out[l.GetName()] = append(out[l.GetName()], cm.HCM.GetHttpFilters()...)
		}
	}
	return out
}

// TestSecurityPerRoute: a policy changes the routes it targets and
// nothing else. The secured routes enable their own policy's filters;
// a/open (same listener, no policy) and b/plain (another port) have no
// per-filter config; the port without a secured route keeps the default
// chain; every policy filter is disabled in the chain.
func TestSecurityPerRoute(t *testing.T) {
	set := securityCase(t)
	for _, c := range []snapshot.Class{snapshot.Envoy, snapshot.EnvoyScoped} {
		routes := routesOf(set, c)
		want := map[string][]string{
			"a/app/rule/0/match/0":   {filterExtAuthzPrefix + "a/app", filterSecurityHeaders, filterJWTAuthn, filterRBAC},
			"a/app/rule/1/match/0":   {filterExtAuthzPrefix + "a/admin", filterSecurityHeaders, filterJWTAuthn, filterRBAC},
			"a/edge/rule/0/match/0":  {filterBasicAuthPrefix + "platform/edge", filterSecurityHeaders},
			"a/keyed/rule/0/match/0": {filterAPIKeyAuthPrefix + "a/api-keys", filterSecurityHeaders},
			"a/open/rule/0/match/0":  nil,
			"b/plain/rule/0/match/0": nil,
		}
		for name, filters := range want {
			r := routes[name]
			if r == nil {
				t.Fatalf("%s: no route %s", c, name)
			}
			got := sortedNames(r.GetTypedPerFilterConfig())
			if strings.Join(got, ",") != strings.Join(sortedStrings(filters), ",") {
				t.Errorf("%s route %s: per-filter configs %v, want %v", c, name, got, sortedStrings(filters))
			}
		}
		// The API key route only enables its Lua filter: the filter's
		// default code is the policy's.
		if !xdsres.EnablesOnly(mustUnpack(t, routes["a/keyed/rule/0/match/0"].GetTypedPerFilterConfig()[filterAPIKeyAuthPrefix+"a/api-keys"])) {
			t.Errorf("%s: the API key route does not only enable its Lua filter", c)
		}
		// The requirement a route names is its own policy's.
		pr := &jwtauthnv3.PerRouteConfig{}
		if err := routes["a/app/rule/1/match/0"].GetTypedPerFilterConfig()[filterJWTAuthn].UnmarshalTo(pr); err != nil || pr.GetRequirementName() != "a/admin" {
			t.Errorf("%s: admin route requirement %q (%v), want a/admin", c, pr.GetRequirementName(), err)
		}
		for l, fs := range chainFilters(t, set, c) {
			var names []string
			for _, f := range fs {
				names = append(names, f.GetName())
				policy := f.GetName() != filterCORS && f.GetName() != filterLocalRateLimit && f.GetName() != wellknown.Router
				if policy != f.GetDisabled() {
					t.Errorf("%s %s: filter %s disabled=%v", c, l, f.GetName(), f.GetDisabled())
				}
			}
			got := strings.Join(names, ",")
			if strings.Contains(l, "9090") {
				if want := filterCORS + "," + filterLocalRateLimit + "," + wellknown.Router; got != want {
					t.Errorf("%s %s: filters %s, want the default chain %s", c, l, got, want)
				}
				continue
			}
			want := strings.Join([]string{filterCORS, filterSecurityHeaders, filterBasicAuthPrefix + "platform/edge", filterAPIKeyAuthPrefix + "a/api-keys", filterJWTAuthn,
				filterExtAuthzPrefix + "a/admin", filterExtAuthzPrefix + "a/app", filterRBAC, filterLocalRateLimit, wellknown.Router}, ",")
			if got != want {
				t.Errorf("%s %s: filters\n%s\nwant\n%s", c, l, got, want)
			}
		}
	}
	// The proxyless gRPC class has none of them.
	for _, r := range routesOf(set, snapshot.GRPC) {
		if len(r.GetTypedPerFilterConfig()) > 0 {
			t.Errorf("grpc route %s: %v", r.GetName(), sortedNames(r.GetTypedPerFilterConfig()))
		}
	}
}

func sortedStrings(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return sortedNames(m)
}

// TestSecurityFilterOrderDeterministic: the chain does not depend on the
// order the routes come in.
func TestSecurityFilterOrderDeterministic(t *testing.T) {
	a := &ir.Security{Name: "a/p", ExtAuth: &ir.ExtAuth{Cluster: "c"}, Authorization: &ir.Authorization{DefaultAction: ir.AuthzAllow}}
	b := &ir.Security{Name: "b/p", ExtAuth: &ir.ExtAuth{Cluster: "c"}, StripHeaders: []string{"x"}}
	names := func(pols []*ir.Security) string {
		fs, err := envoyHTTPFilters(pols)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.GetName())
		}
		return strings.Join(out, ",")
	}
	vhs := func(first, second *ir.Security) *vhostSet {
		v := &vhostSet{}
		v.add("x.example.com", []ir.Route{{Name: "1", Security: first}, {Name: "2", Security: second}})
		return v
	}
	one, two := names(securityPolicies(vhs(a, b))), names(securityPolicies(vhs(b, a)))
	if one != two {
		t.Fatalf("chains differ:\n%s\n%s", one, two)
	}
	want := "envoy.filters.http.cors,envoy.filters.http.header_mutation/security,envoy.filters.http.ext_authz/a/p,envoy.filters.http.ext_authz/b/p,envoy.filters.http.rbac,envoy.filters.http.local_ratelimit,envoy.filters.http.router"
	if one != want {
		t.Fatalf("chain\n%s\nwant\n%s", one, want)
	}
}

// TestAuthorizationFirstMatch: first-match rules with mixed actions as one
// ALLOW policy set. Evaluated here on the rule structure: a Deny rule
// before an Allow rule is negated in it; with defaultAction Allow the
// default policy is "no Deny rule matched".
func TestAuthorizationFirstMatch(t *testing.T) {
	s := &ir.Security{Name: "a/p", Authorization: &ir.Authorization{DefaultAction: ir.AuthzAllow, Rules: []ir.AuthzRule{
		{Name: "ok", Action: ir.AuthzAllow, ClientCIDRs: []string{"10.0.0.0/8"}},
		{Name: "bad", Action: ir.AuthzDeny, ClientCIDRs: []string{"10.1.0.0/16"}},
	}}}
	rb := authorizationRules(s)
	first := rb.GetPolicies()["000-ok"].GetPrincipals()[0]
	if first.GetRemoteIp().GetAddressPrefix() != "10.0.0.0" || first.GetRemoteIp().GetPrefixLen().GetValue() != 8 {
		t.Errorf("allow rule before any deny: %v", first)
	}
	def := rb.GetPolicies()["002-default"].GetPrincipals()[0]
	if def.GetNotId().GetRemoteIp().GetAddressPrefix() != "10.1.0.0" {
		t.Errorf("default allow is not 'not the deny rule': %v", def)
	}
	s.Authorization.DefaultAction = ir.AuthzDeny
	if _, ok := authorizationRules(s).GetPolicies()["002-default"]; ok {
		t.Errorf("defaultAction Deny has a default policy")
	}
}

// TestSecuritySemanticRules: the load-time rules of the security filters,
// each failing on the configuration Envoy rejects and passing the fixed
// one; and a route naming a filter its listener lacks fails Translate.
func TestSecuritySemanticRules(t *testing.T) {
	// The router ends the chain, as Envoy requires (checkFilterChain).
	router, err := routerFilter()
	if err != nil {
		t.Fatal(err)
	}
	listener := func(f proto2any) *listenerv3.Listener {
		hcm, err := anypb.New(&hcmv3.HttpConnectionManager{StatPrefix: "s", HttpFilters: []*hcmv3.HttpFilter{{Name: "f", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: f.any(t)}}, router}})
		if err != nil {
			t.Fatal(err)
		}
		return &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm}}}}}}
	}
	jwt := func(provider string) *jwtauthnv3.JwtAuthentication {
		return &jwtauthnv3.JwtAuthentication{
			Providers: map[string]*jwtauthnv3.JwtProvider{"p": {}},
			RequirementMap: map[string]*jwtauthnv3.JwtRequirement{"r": {RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{RequiresAny: &jwtauthnv3.JwtRequirementOrList{
				Requirements: []*jwtauthnv3.JwtRequirement{{RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: provider}}},
			}}}},
		}
	}
	headers := &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x"}}}}
	authz := func(both bool) *extauthzv3.ExtAuthz {
		e := &extauthzv3.ExtAuthz{AllowedHeaders: headers, Services: &extauthzv3.ExtAuthz_HttpService{HttpService: &extauthzv3.HttpService{}}}
		if both {
			e.GetHttpService().AuthorizationRequest = &extauthzv3.AuthorizationRequest{AllowedHeaders: headers}
		}
		return e
	}
	for _, tc := range []struct {
		name string
		cfg  proto2any
		want string
	}{
		{"known provider", msg{jwt("p")}, ""},
		{"unknown provider", msg{jwt("q")}, `required provider "q" is not configured`},
		{"allowed headers once", msg{authz(false)}, ""},
		{"allowed headers twice", msg{authz(true)}, "allowed_headers is set both"},
	} {
		got := ""
		for _, err := range CheckResource(snapshot.Envoy, listener(tc.cfg)) {
			got += err.Error() + "; "
		}
		switch {
		case tc.want == "" && got != "":
			t.Errorf("%s: %s", tc.name, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%s: violations %q, want one with %q", tc.name, got, tc.want)
		}
	}

	// A per-route config of a filter the chain does not have: the check
	// names the filter. perRouteViolations is what Translate runs on
	// every listener and its route configurations.
	pr, err := pack(&jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_RequirementName{RequirementName: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	rc := &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []*routev3.Route{{Name: "r",
		TypedPerFilterConfig: map[string]*anypbAny{filterJWTAuthn: pr}}}}}}
	if v := perRouteViolations(rc, map[string]bool{}, nil); len(v) != 1 || !strings.Contains(v[0].err.Error(), "does not have") {
		t.Errorf("missing filter: %v", v)
	}
	if v := perRouteViolations(rc, map[string]bool{filterJWTAuthn: true}, map[string]bool{"a/p": true}); len(v) != 1 || !strings.Contains(v[0].err.Error(), `requirement_name "nope"`) {
		t.Errorf("unknown requirement: %v", v)
	}
	if v := perRouteViolations(rc, map[string]bool{filterJWTAuthn: true}, map[string]bool{"nope": true}); len(v) != 0 {
		t.Errorf("good config: %v", v)
	}
}

type anypbAny = anypb.Any

// proto2any packs a filter configuration for a test listener.
type proto2any interface{ any(t *testing.T) *anypb.Any }

type msg struct{ m proto.Message }

func (m msg) any(t *testing.T) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m.m) // not pack: the cases are invalid on purpose
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSecurityClustersExist: a policy whose authorization service's
// cluster is not served fails the listener (Envoy would fail every request
// of the route instead).
func TestSecurityClustersExist(t *testing.T) {
	sec := &ir.Security{Name: "team-a/p", ExtAuth: &ir.ExtAuth{GRPC: true, Cluster: "team-a/api", Timeout: time.Second}}
	x := fidelityIR(ir.Route{Name: "team-a/api/rule/0/match/0", Security: sec})
	if _, err := Translate(x, testRevision); err != nil {
		t.Fatalf("served cluster: %v", err)
	}
	hcm := &hcmv3.HttpConnectionManager{HttpFilters: []*hcmv3.HttpFilter{}}
	fs, err := envoyHTTPFilters([]*ir.Security{{Name: "team-a/p", ExtAuth: &ir.ExtAuth{GRPC: true, Cluster: "nowhere", Timeout: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	hcm.HttpFilters = fs
	if got := filterClusters(hcm); len(got) != 1 || got[0] != "nowhere" {
		t.Fatalf("filter clusters %v, want [nowhere]", got)
	}
}

// evalPrincipal evaluates the principals authorizationRules builds (and,
// or, not, remote_ip, any) for a client address.
func evalPrincipal(t *testing.T, p *rbacconfigv3.Principal, ip netip.Addr) bool {
	t.Helper()
	switch {
	case p.GetAny():
		return true
	case p.GetAndIds() != nil:
		for _, q := range p.GetAndIds().GetIds() {
			if !evalPrincipal(t, q, ip) {
				return false
			}
		}
		return true
	case p.GetOrIds() != nil:
		for _, q := range p.GetOrIds().GetIds() {
			if evalPrincipal(t, q, ip) {
				return true
			}
		}
		return false
	case p.GetNotId() != nil:
		return !evalPrincipal(t, p.GetNotId(), ip)
	case p.GetRemoteIp() != nil:
		r := p.GetRemoteIp()
		pfx, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", r.GetAddressPrefix(), r.GetPrefixLen().GetValue()))
		if err != nil {
			t.Fatal(err)
		}
		return pfx.Contains(ip)
	}
	t.Fatalf("principal %v not evaluated", p)
	return false
}

// TestAuthorizationEquivalence: for every order of Allow and Deny rules
// over nested CIDRs and both default actions, the ALLOW policy set allows
// exactly the addresses whose first matching rule (or the default) is
// Allow.
func TestAuthorizationEquivalence(t *testing.T) {
	cidrs := []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.0.2.0/24"}
	ips := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.1.9.9"), netip.MustParseAddr("10.9.9.9"),
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("203.0.113.1")}
	cases := 0
	// Each of the four rules is absent, Allow or Deny, in a fixed order.
	for mask := 0; mask < 81; mask++ {
		for _, def := range []ir.AuthzAction{ir.AuthzAllow, ir.AuthzDeny} {
			a := &ir.Authorization{DefaultAction: def}
			m := mask
			for i, c := range cidrs {
				switch m % 3 {
				case 1:
					a.Rules = append(a.Rules, ir.AuthzRule{Name: fmt.Sprint(i), Action: ir.AuthzAllow, ClientCIDRs: []string{c}})
				case 2:
					a.Rules = append(a.Rules, ir.AuthzRule{Name: fmt.Sprint(i), Action: ir.AuthzDeny, ClientCIDRs: []string{c}})
				}
				m /= 3
			}
			rb := authorizationRules(&ir.Security{Name: "a/p", Authorization: a})
			for _, ip := range ips {
				want := def == ir.AuthzAllow
				for _, r := range a.Rules {
					if netip.MustParsePrefix(r.ClientCIDRs[0]).Contains(ip) {
						want = r.Action == ir.AuthzAllow
						break
					}
				}
				got := false
				for _, pol := range rb.GetPolicies() {
					for _, pr := range pol.GetPrincipals() {
						got = got || evalPrincipal(t, pr, ip)
					}
				}
				if got != want {
					t.Fatalf("rules %+v default %s, client %s: allowed=%v, want %v", a.Rules, def, ip, got, want)
				}
				cases++
			}
		}
	}
	if cases != 81*2*len(ips) {
		t.Fatalf("%d cases", cases)
	}
}

// envoyHTTPFilters is the chain of a listener whose routes carry pols
// (one route each), as httpFilters builds it.
func envoyHTTPFilters(pols []*ir.Security) ([]*hcmv3.HttpFilter, error) {
	v := &vhostSet{}
	var rs []ir.Route
	for i, p := range pols {
		rs = append(rs, ir.Route{Name: fmt.Sprintf("r%d", i), Security: p})
	}
	v.add("x.example.com", rs)
	return newTranslation(&ir.IR{}).httpFilters(nil, v)
}
