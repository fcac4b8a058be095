package translate

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	basicauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
)

// HTTP filter names of SecurityPolicy. A filter of one policy (basic_auth,
// the Lua filter of apiKeyAuth, ext_authz) is named
// "<type>/<namespace>/<policy>"; the others are shared by every policy of
// a chain and configured per route.
const (
	filterSecurityHeaders = "envoy.filters.http.header_mutation/security"
	filterBasicAuthPrefix = "envoy.filters.http.basic_auth/"
	filterJWTAuthn        = "envoy.filters.http.jwt_authn"
	filterExtAuthzPrefix  = "envoy.filters.http.ext_authz/"
	filterRBAC            = "envoy.filters.http.rbac"

	// jwtMetadataNamespace is the dynamic metadata namespace jwt_authn
	// writes the verified payloads in: the filter's name
	// (source/extensions/filters/http/jwt_authn/filter.cc,
	// Filter::setExtractedData calls setDynamicMetadata with
	// "envoy.filters.http.jwt_authn"), where the RBAC filter's metadata
	// principals read them.
	jwtMetadataNamespace = "envoy.filters.http.jwt_authn"
	// scopeClaim is the OAuth 2.0 scope claim (RFC 8693 §4.2): a string
	// of space-separated scopes.
	scopeClaim = "scope"
	// jwksFetchTimeout bounds one fetch of a remote JWKS.
	jwksFetchTimeout = 5 * time.Second
)

// jwtProviderName is the provider's name in the chain's jwt_authn filter,
// and the key of its payload in the dynamic metadata: unique across
// policies.
func jwtProviderName(sec *ir.Security, p string) string { return sec.Name + "/" + p }

// securityPolicies are the distinct policies of the routes of vhs, by
// name.
func securityPolicies(vhs *vhostSet) []*ir.Security {
	seen := map[string]*ir.Security{}
	for _, h := range vhs.hostnames() {
		for i := range vhs.routes[h] {
			if s := vhs.routes[h][i].Security; s != nil {
				seen[s.Name] = s
			}
		}
	}
	out := make([]*ir.Security, 0, len(seen))
	for _, n := range sortedNames(seen) {
		out = append(out, seen[n])
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// disabledFilter is an HTTP filter that does nothing until a route's
// typed_per_filter_config enables it: PerFilterConfigs
// (source/common/router/per_filter_config.cc) treats a filter with any
// per-route entry that is not FilterConfig{disabled: true} as enabled
// ("If a filter is explicitly configured we treat it as enabled").
func disabledFilter(slot filterSlot, name string, cfg proto.Message) (slottedFilter, error) {
	a, err := pack(cfg)
	if err != nil {
		return slottedFilter{}, err
	}
	return slottedFilter{slot: slot, filter: &hcmv3.HttpFilter{Name: name, Disabled: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}}, nil
}

// securityFilters are the SecurityPolicy filters of a chain whose routes
// carry pols, each disabled: a route enables those of its own policy
// (securityPerRoute).
func securityFilters(pols []*ir.Security) ([]slottedFilter, error) {
	if len(pols) == 0 {
		return nil, nil
	}
	var out []slottedFilter
	add := func(slot filterSlot, name string, cfg proto.Message) error {
		f, err := disabledFilter(slot, name, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, f)
		return nil
	}
	jwt := &jwtauthnv3.JwtAuthentication{Providers: map[string]*jwtauthnv3.JwtProvider{}, RequirementMap: map[string]*jwtauthnv3.JwtRequirement{}}
	strip, rbac := false, false
	for _, s := range pols {
		strip = strip || len(s.StripHeaders) > 0
		rbac = rbac || s.Authorization != nil
		if s.BasicAuth != nil {
			if err := add(slotBasicAuth, filterBasicAuthPrefix+s.Name, basicAuth(s.BasicAuth)); err != nil {
				return nil, err
			}
		}
		if s.APIKeyAuth != nil {
			if err := add(slotAPIKeyAuth, filterAPIKeyAuthPrefix+s.Name, apiKeyAuthFilter(s.APIKeyAuth)); err != nil {
				return nil, err
			}
		}
		if s.JWT != nil {
			for _, p := range s.JWT.Providers {
				jwt.Providers[jwtProviderName(s, p.Name)] = jwtProvider(s, &p)
			}
			jwt.RequirementMap[s.Name] = jwtRequirement(s)
		}
		if s.ExtAuth != nil {
			cfg, err := extAuthz(s.ExtAuth)
			if err != nil {
				return nil, fmt.Errorf("SecurityPolicy %s extAuth: %w", s.Name, err)
			}
			if err := add(slotExtAuthz, filterExtAuthzPrefix+s.Name, cfg); err != nil {
				return nil, err
			}
		}
	}
	if strip {
		if err := add(slotSecurityHeaders, filterSecurityHeaders, &headermutationv3.HeaderMutation{}); err != nil {
			return nil, err
		}
	}
	if len(jwt.Providers) > 0 {
		if err := add(slotJWTAuthn, filterJWTAuthn, jwt); err != nil {
			return nil, err
		}
	}
	if rbac {
		if err := add(slotRBAC, filterRBAC, &rbacv3.RBAC{}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func basicAuth(b *ir.BasicAuth) *basicauthv3.BasicAuth {
	// BasicAuth's users is a DataSource: Envoy reads the file when it
	// loads the filter and the route (BasicAuthFilterFactory::
	// createFilterFactoryFromProtoTyped in
	// source/extensions/filters/http/basic_auth/config.cc, with
	// Config::DataSource::read, then readHtpasswd). A missing or malformed
	// file makes Envoy reject the listener: the file must be on every
	// proxy host before the policy is merged (docs/security.md). A changed
	// file takes effect with the next update of the listener.
	return &basicauthv3.BasicAuth{
		Users:                 &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: b.UsersFile}},
		ForwardUsernameHeader: b.ForwardUsernameHeader,
	}
}

func jwtProvider(s *ir.Security, p *ir.JWTProvider) *jwtauthnv3.JwtProvider {
	out := &jwtauthnv3.JwtProvider{
		Issuer:            p.Issuer,
		Audiences:         p.Audiences,
		Forward:           p.Forward,
		FromParams:        p.Params,
		FromCookies:       p.Cookies,
		PayloadInMetadata: jwtProviderName(s, p.Name),
		// The scope claim is one string; as a list, RBAC matches one
		// scope (JwtProvider.normalize_payload_in_metadata).
		NormalizePayloadInMetadata: &jwtauthnv3.JwtProvider_NormalizePayload{SpaceDelimitedClaims: []string{scopeClaim}},
	}
	for _, h := range p.Headers {
		out.FromHeaders = append(out.FromHeaders, &jwtauthnv3.JwtHeader{Name: h.Name, ValuePrefix: h.Prefix})
	}
	for _, c := range p.ClaimToHeaders {
		out.ClaimToHeaders = append(out.ClaimToHeaders, &jwtauthnv3.JwtClaimToHeader{HeaderName: c.Header, ClaimName: c.Claim})
	}
	if r := p.RemoteJWKS; r != nil {
		out.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtauthnv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{
				Uri:              r.URI,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: r.Cluster},
				Timeout:          durationpb.New(jwksFetchTimeout),
			},
			// Fetch when the listener is created, not on the first
			// request, and keep the keys between refreshes.
			AsyncFetch: &jwtauthnv3.JwksAsyncFetch{},
		}}
	} else {
		out.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: p.LocalJWKS},
		}}
	}
	return out
}

// jwtRequirement: a token of any provider of the policy; with optional, a
// request without one passes too (allow_missing: a bad token still fails).
func jwtRequirement(s *ir.Security) *jwtauthnv3.JwtRequirement {
	var reqs []*jwtauthnv3.JwtRequirement
	for _, p := range s.JWT.Providers {
		reqs = append(reqs, &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: jwtProviderName(s, p.Name)}})
	}
	if s.JWT.Optional {
		reqs = append(reqs, &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}})
	}
	if len(reqs) == 1 {
		return reqs[0]
	}
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{RequiresAny: &jwtauthnv3.JwtRequirementOrList{Requirements: reqs}}}
}

// exactNames matches each name exactly.
func exactNames(names []string) *matcherv3.ListStringMatcher {
	out := &matcherv3.ListStringMatcher{}
	for _, n := range names {
		out.Patterns = append(out.Patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}})
	}
	return out
}

func extAuthz(e *ir.ExtAuth) (*extauthzv3.ExtAuthz, error) {
	out := &extauthzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		FailureModeAllow:    e.FailOpen,
		// The verified JWT payloads go to a gRPC service in the
		// CheckRequest's metadata context.
		MetadataContextNamespaces: []string{jwtMetadataNamespace},
	}
	if len(e.HeadersToExtAuth) > 0 {
		out.AllowedHeaders = exactNames(e.HeadersToExtAuth)
	}
	if e.GRPC {
		out.Services = &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: e.Cluster}},
			Timeout:         durationpb.New(e.Timeout),
		}}
		if len(e.HeadersToBackend) > 0 {
			// Only the named headers of the answer reach the service:
			// allow_expression is checked before disallow_all
			// (Checker::isAllowed in
			// source/extensions/filters/common/mutation_rules/mutation_rules.cc).
			quoted := make([]string, len(e.HeadersToBackend))
			for i, h := range e.HeadersToBackend {
				quoted[i] = regexp.QuoteMeta(h)
			}
			out.DecoderHeaderMutationRules = &mutationrulesv3.HeaderMutationRules{
				DisallowAll:     wrapperspb.Bool(true),
				AllowExpression: &matcherv3.RegexMatcher{Regex: "^(" + strings.Join(quoted, "|") + ")$"},
			}
		}
		return out, nil
	}
	hs := &extauthzv3.HttpService{
		ServerUri: &corev3.HttpUri{
			// The host of the URI is not used to connect (the cluster is)
			// but must parse (HttpUri.uri).
			Uri:              "http://" + strings.NewReplacer("/", ".", ":", ".").Replace(e.Cluster),
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: e.Cluster},
			Timeout:          durationpb.New(e.Timeout),
		},
		PathPrefix: e.PathPrefix,
	}
	if len(e.HeadersToBackend) > 0 {
		hs.AuthorizationResponse = &extauthzv3.AuthorizationResponse{AllowedUpstreamHeaders: exactNames(e.HeadersToBackend)}
	}
	out.Services = &extauthzv3.ExtAuthz_HttpService{HttpService: hs}
	return out, nil
}

// securityPerRoute is the typed_per_filter_config that enables a route's
// policy on its filters.
func securityPerRoute(s *ir.Security, out map[string]*anypb.Any) error {
	set := func(name string, m proto.Message) error {
		a, err := pack(m)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out[name] = a
		return nil
	}
	// A filter of the policy's own (basic_auth, ext_authz) is enabled by
	// its per-route type, which repeats or keeps its configuration: any
	// entry enables a disabled filter (disabledFilter).
	if len(s.StripHeaders) > 0 {
		m := &headermutationv3.Mutations{}
		for _, h := range s.StripHeaders {
			m.RequestMutations = append(m.RequestMutations, &mutationrulesv3.HeaderMutation{Action: &mutationrulesv3.HeaderMutation_Remove{Remove: h}})
		}
		if err := set(filterSecurityHeaders, &headermutationv3.HeaderMutationPerRoute{Mutations: m}); err != nil {
			return err
		}
	}
	if s.BasicAuth != nil {
		users := basicAuth(s.BasicAuth).GetUsers()
		if err := set(filterBasicAuthPrefix+s.Name, &basicauthv3.BasicAuthPerRoute{Users: users}); err != nil {
			return err
		}
	}
	if s.APIKeyAuth != nil {
		// The filter's default code is the policy's: an empty
		// FilterConfig enables it (enableFilter).
		a, err := enableFilter()
		if err != nil {
			return err
		}
		out[filterAPIKeyAuthPrefix+s.Name] = a
	}
	if s.JWT != nil {
		if err := set(filterJWTAuthn, &jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_RequirementName{RequirementName: s.Name}}); err != nil {
			return err
		}
	}
	if s.ExtAuth != nil {
		keep := &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{}}}
		if err := set(filterExtAuthzPrefix+s.Name, keep); err != nil {
			return err
		}
	}
	if a := s.Authorization; a != nil {
		if err := set(filterRBAC, &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: authorizationRules(s)}}); err != nil {
			return err
		}
	}
	return nil
}

// authorizationRules turns first-match rules into one ALLOW policy set
// (Envoy's RBAC has one action for all its policies): a request is
// allowed when an Allow rule matches and no Deny rule before it does, or,
// with defaultAction Allow, when no Deny rule matches. Without any such
// policy Envoy's ALLOW action denies every request.
func authorizationRules(s *ir.Security) *rbacconfigv3.RBAC {
	a := s.Authorization
	out := &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_ALLOW, Policies: map[string]*rbacconfigv3.Policy{}}
	anyPermission := []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}}
	var denied []*rbacconfigv3.Principal // negated Deny rules seen so far
	for i, r := range a.Rules {
		p := principal(s, &r)
		if r.Action == ir.AuthzDeny {
			denied = append(denied, notID(p))
			continue
		}
		ids := append(append([]*rbacconfigv3.Principal(nil), denied...), p)
		out.Policies[fmt.Sprintf("%03d-%s", i, r.Name)] = &rbacconfigv3.Policy{Permissions: anyPermission, Principals: []*rbacconfigv3.Principal{andIDs(ids)}}
	}
	if a.DefaultAction == ir.AuthzAllow {
		pr := &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Any{Any: true}}
		if len(denied) > 0 {
			pr = andIDs(denied)
		}
		out.Policies[fmt.Sprintf("%03d-default", len(a.Rules))] = &rbacconfigv3.Policy{Permissions: anyPermission, Principals: []*rbacconfigv3.Principal{pr}}
	}
	return out
}

func notID(p *rbacconfigv3.Principal) *rbacconfigv3.Principal {
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_NotId{NotId: p}}
}

func andIDs(ids []*rbacconfigv3.Principal) *rbacconfigv3.Principal {
	if len(ids) == 1 {
		return ids[0]
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_AndIds{AndIds: &rbacconfigv3.Principal_Set{Ids: ids}}}
}

func orIDs(ids []*rbacconfigv3.Principal) *rbacconfigv3.Principal {
	if len(ids) == 1 {
		return ids[0]
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: ids}}}
}

// principal of a rule: any of the CIDRs (the client address as the HCM
// determines it, use_remote_address), and every claim and scope.
func principal(s *ir.Security, r *ir.AuthzRule) *rbacconfigv3.Principal {
	var and []*rbacconfigv3.Principal
	if len(r.ClientCIDRs) > 0 {
		var or []*rbacconfigv3.Principal
		for _, c := range r.ClientCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				continue // the model checked every CIDR
			}
			or = append(or, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{RemoteIp: &corev3.CidrRange{
				AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits())),
			}}})
		}
		and = append(and, orIDs(or))
	}
	if j := r.JWT; j != nil {
		key := jwtProviderName(s, j.Provider)
		for _, c := range j.Claims {
			var or []*rbacconfigv3.Principal
			for _, v := range c.Values {
				or = append(or, claimIs(key, c.Name, v))
			}
			and = append(and, orIDs(or))
		}
		for _, sc := range j.Scopes {
			and = append(and, claimIs(key, scopeClaim, sc))
		}
	}
	return andIDs(and)
}

// claimIs matches a claim that is the string v, or a list holding v.
func claimIs(payloadKey, claim, v string) *rbacconfigv3.Principal {
	path := []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: payloadKey}}}
	for _, k := range strings.Split(claim, ".") {
		path = append(path, &matcherv3.MetadataMatcher_PathSegment{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: k}})
	}
	exact := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
	md := func(vm *matcherv3.ValueMatcher) *rbacconfigv3.Principal {
		return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Metadata{Metadata: &matcherv3.MetadataMatcher{
			Filter: jwtMetadataNamespace, Path: path, Value: vm,
		}}}
	}
	return orIDs([]*rbacconfigv3.Principal{
		md(&matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: exact}}),
		md(&matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{
			MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: exact}}},
		}}}),
	})
}
