package translate

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
)

// rateLimitStatPrefix is the stat prefix of the global rate limit filter.
const rateLimitStatPrefix = "gitxds_ratelimit"

// wasmRuntime is the Wasm runtime of every Wasm filter: V8, the one
// official Envoy builds include.
const wasmRuntime = "envoy.wasm.runtime.v8"

// wasmFetchTimeout bounds the download of remote Wasm code.
const wasmFetchTimeout = 30 * time.Second

// httpFilters is the filter chain of an HttpConnectionManager serving
// vhosts: CORS, local rate limit and the router always; the filters of the
// SecurityPolicies of its routes (securityFilters); the global rate limit
// filter when a route has a global limit and the port a rate limit
// service; and the filters of every EnvoyExtensionPolicy of a route; in
// the order of filterorder.go. Every filter a policy brings is disabled in
// the chain and enabled by the routes of that policy (envoyRoute sets
// their typed_per_filter_config), so it runs on them alone: Envoy skips a
// filter with disabled: true unless the route names it
// (FilterChainUtility::createFilterChainForFactories with the route's
// filterDisabled, source/common/http/filter_chain_helper.cc, and
// PerFilterConfigs::disabled, source/common/router/per_filter_config.cc).
func (t *translation) httpFilters(rl *ir.RateLimitService, vhosts *vhostSet) ([]*hcmv3.HttpFilter, error) {
	fs, err := securityFilters(securityPolicies(vhosts))
	if err != nil {
		return nil, err
	}
	add := func(f slottedFilter, name string, cfg *anypb.Any, disabled bool) {
		f.filter = &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}, Disabled: disabled}
		fs = append(fs, f)
	}
	cors, err := pack(&corsv3.Cors{})
	if err != nil {
		return nil, err
	}
	add(slottedFilter{slot: slotCORS}, filterCORS, cors, false)
	lrl, err := pack(&localratelimitv3.LocalRateLimit{StatPrefix: localRateLimitStatPrefix})
	if err != nil {
		return nil, err
	}
	add(slottedFilter{slot: slotLocalRateLimit}, filterLocalRateLimit, lrl, false)
	router, err := routerFilter()
	if err != nil {
		return nil, err
	}
	fs = append(fs, slottedFilter{slot: slotRouter, filter: router})
	if usesSessions(vhosts) {
		f, err := statefulSessionFilter()
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}

	global, seen := false, map[string]bool{}
	for _, h := range vhosts.order {
		for i := range vhosts.routes[h] {
			r := &vhosts.routes[h][i]
			global = global || r.GlobalRateLimit != nil
			for _, x := range r.Extensions {
				if seen[x.Policy.String()] {
					continue
				}
				seen[x.Policy.String()] = true
				filters, err := t.extensionFilters(&x)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", x.Policy, err)
				}
				for _, f := range filters {
					slot, place := extensionPlace(f.kind, x.Before, x.After)
					add(slottedFilter{slot: slot, place: place, policy: x.Policy.String(), kind: f.kind}, f.name, f.cfg, true)
				}
			}
		}
	}
	if global && rl != nil {
		cfg, err := pack(&ratelimitv3.RateLimit{
			Domain:          ir.RateLimitDomain,
			StatPrefix:      rateLimitStatPrefix,
			FailureModeDeny: rl.FailureModeDeny,
			RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
				GrpcService:         envoyGRPC(rl.Cluster),
				TransportApiVersion: corev3.ApiVersion_V3,
			},
			EnableXRatelimitHeaders: ratelimitv3.RateLimit_DRAFT_VERSION_03,
		})
		if err != nil {
			return nil, err
		}
		add(slottedFilter{slot: slotRateLimit}, filterRateLimit, cfg, true)
	}
	return orderFilters(fs), nil
}

func envoyGRPC(cluster string) *corev3.GrpcService {
	return &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster},
	}}
}

// namedFilter is one filter of a policy, with its kind's slot.
type namedFilter struct {
	kind filterSlot
	name string
	cfg  *anypb.Any
}

// extensionFilterName names the i-th filter of kind f of a policy; routes
// enable it by this name.
func extensionFilterName(f string, policy ir.ObjectRef, i int) string {
	return fmt.Sprintf("%s/%s/%s/%d", f, policy.Namespace, policy.Name, i)
}

// extensionFilters are the filters of one EnvoyExtensionPolicy: ext_proc,
// wasm, lua, each in the policy's order.
func (t *translation) extensionFilters(x *ir.Extension) ([]namedFilter, error) {
	var out []namedFilter
	for i, e := range x.ExtProc {
		if t.clusters[e.Cluster] == nil {
			return nil, fmt.Errorf("extProc[%d]: cluster %q is not in the IR", i, e.Cluster)
		}
		cfg, err := pack(&extprocv3.ExternalProcessor{
			GrpcService:      envoyGRPC(e.Cluster),
			FailureModeAllow: e.FailOpen,
			MessageTimeout:   duration(e.Timeout),
		})
		if err != nil {
			return nil, fmt.Errorf("extProc[%d]: %w", i, err)
		}
		out = append(out, namedFilter{slotExtProc, extensionFilterName(filterExtProc, x.Policy, i), cfg})
	}
	for i, w := range x.Wasm {
		cfg, err := t.wasmFilter(w)
		if err != nil {
			return nil, fmt.Errorf("wasm[%d]: %w", i, err)
		}
		out = append(out, namedFilter{slotWasm, extensionFilterName(filterWasm, x.Policy, i), cfg})
	}
	for i, l := range x.Lua {
		// default_source_code only: Envoy refuses a Lua filter with both
		// it and inline_code (FilterConfig::FilterConfig,
		// source/extensions/filters/http/lua/lua_filter.cc).
		cfg, err := pack(&luav3.Lua{DefaultSourceCode: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: l.Source},
		}})
		if err != nil {
			return nil, fmt.Errorf("lua[%d]: %w", i, err)
		}
		out = append(out, namedFilter{slotLua, extensionFilterName(filterLua, x.Policy, i), cfg})
	}
	return out, nil
}

// wasmFilter is a Wasm HTTP filter on V8: remote code (its SHA-256 is
// required: Envoy refuses remote Wasm code without one, see
// checkWasmCode) or a file on the proxy host.
func (t *translation) wasmFilter(w ir.Wasm) (*anypb.Any, error) {
	code := &corev3.AsyncDataSource{}
	switch {
	case w.URL != "":
		if t.clusters[w.Cluster] == nil {
			return nil, fmt.Errorf("cluster %q of %s is not in the IR", w.Cluster, w.URL)
		}
		code.Specifier = &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
			HttpUri: &corev3.HttpUri{
				Uri:              w.URL,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: w.Cluster},
				Timeout:          duration(wasmFetchTimeout),
			},
			Sha256: w.SHA256,
		}}
	case w.File != "":
		code.Specifier = &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
			Specifier: &corev3.DataSource_Filename{Filename: w.File},
		}}
	default:
		return nil, fmt.Errorf("neither a URL nor a file")
	}
	plugin := &wasmv3.PluginConfig{
		Name: w.Name,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    w.Name,
			Runtime: wasmRuntime,
			Code:    code,
		}},
		FailurePolicy: wasmv3.FailurePolicy_FAIL_CLOSED,
	}
	if w.FailOpen {
		plugin.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN
	}
	if w.Config != "" {
		c, err := pack(wrapperspb.String(w.Config))
		if err != nil {
			return nil, err
		}
		plugin.Configuration = c
	}
	return pack(&wasmfilterv3.Wasm{Config: plugin})
}

// enableFilter is the per-route config that turns on a filter disabled in
// the chain without configuring it: a FilterConfig whose config is an
// empty Any (PerFilterConfigs::PerFilterConfigs,
// source/common/router/per_filter_config.cc: "If the field `config` is
// configured but is empty, we treat the filter is enabled explicitly").
func enableFilter() (*anypb.Any, error) {
	return pack(&routev3.FilterConfig{Config: &anypb.Any{}})
}

// routeFilterConfigs are the per-route configs of a route's global rate
// limit and extension filters.
func routeFilterConfigs(r *ir.Route, into map[string]*anypb.Any) error {
	if g := r.GlobalRateLimit; g != nil {
		cfg, err := globalRateLimit(g, r.Security)
		if err != nil {
			return fmt.Errorf("global rate limit: %w", err)
		}
		into[filterRateLimit] = cfg
	}
	for _, x := range r.Extensions {
		on, err := enableFilter()
		if err != nil {
			return err
		}
		for i := range x.ExtProc {
			into[extensionFilterName(filterExtProc, x.Policy, i)] = on
		}
		for i := range x.Wasm {
			into[extensionFilterName(filterWasm, x.Policy, i)] = on
		}
		for i := range x.Lua {
			into[extensionFilterName(filterLua, x.Policy, i)] = on
		}
	}
	return nil
}

// Descriptor keys of global rate limits; RateLimitConfig uses the same.
const (
	descriptorRule = "rule"
	// descriptorMatched is the value of a header_value_match entry.
	descriptorMatched = "match"
	// descriptorMaskedAddress is the key Envoy gives masked_remote_address
	// entries (MaskedRemoteAddressAction, source/common/router/
	// router_ratelimit.cc).
	descriptorMaskedAddress = "masked_remote_address"
)

func headerDescriptorKey(name string) string { return "header:" + name }

// claimDescriptorKey is the key of a JWT claim's entry.
func claimDescriptorKey(claim string) string { return "jwt:" + claim }

const descriptorPath = "path"

// globalRateLimit is the per-route config of the rate limit filter: one
// rate limit (one descriptor) per rule. The descriptor's entries are
// generated by actions in order; when an action does not match (a header
// that is absent or does not match) Envoy sends no descriptor for the rule
// (RateLimitPolicyEntryImpl::populateDescriptors, source/common/router/
// router_ratelimit.cc), which is how a rule's selectors select requests.
// The rate limits of a RateLimitPerRoute replace the route's own
// (Filter::populateRateLimitDescriptors,
// source/extensions/filters/http/ratelimit/ratelimit.cc).
//
// A JWT claim is a metadata action on the dynamic metadata jwt_authn
// wrote (namespace envoy.filters.http.jwt_authn, key the provider's
// payload_in_metadata, then the claim's path): MetaDataAction::
// populateDescriptor in source/common/router/router_ratelimit.cc takes the
// value's string_value and adds no entry (so no descriptor) when it is
// empty or absent. jwt_authn runs before the rate limit filter
// (filterorder.go), on the route's own policy (sec).
func globalRateLimit(g *ir.GlobalRateLimit, sec *ir.Security) (*anypb.Any, error) {
	out := &ratelimitv3.RateLimitPerRoute{Domain: ir.RateLimitDomain}
	for _, rule := range g.Rules {
		actions := []*routev3.RateLimit_Action{{ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{
			GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorKey: descriptorRule, DescriptorValue: rule.ID},
		}}}
		for _, h := range rule.Headers {
			if h.Distinct {
				actions = append(actions, &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{
					RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: h.Name, DescriptorKey: headerDescriptorKey(h.Name)},
				}})
				continue
			}
			sm := &matcherv3.StringMatcher{}
			if h.Type == ir.MatchRegex {
				if err := compileRegex(h.Value); err != nil {
					return nil, err
				}
				sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: regexMatcher(h.Value)}
			} else {
				sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: h.Value}
			}
			actions = append(actions, headerMatchAction(headerDescriptorKey(h.Name), &routev3.HeaderMatcher{
				Name: h.Name, InvertMatch: h.Invert,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm},
			}))
		}
		if p := rule.Path; p != nil {
			sm := &matcherv3.StringMatcher{}
			switch p.Type {
			case ir.MatchRegex:
				if err := compileRegex(p.Value); err != nil {
					return nil, err
				}
				sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: regexMatcher(p.Value)}
			case ir.MatchPrefix:
				sm.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: p.Value}
			default:
				sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: p.Value}
			}
			actions = append(actions, headerMatchAction(descriptorPath, &routev3.HeaderMatcher{
				Name: ":path", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm},
			}))
		}
		for _, s := range rule.SourceIPs {
			pfx, err := netip.ParsePrefix(s.CIDR)
			if err != nil {
				return nil, err
			}
			m := &routev3.RateLimit_Action_MaskedRemoteAddress{}
			bits := uint32(pfx.Bits())
			if s.Distinct {
				bits = uint32(pfx.Addr().BitLen())
			}
			if pfx.Addr().Is4() {
				m.V4PrefixMaskLen = wrapperspb.UInt32(bits)
			} else {
				m.V6PrefixMaskLen = wrapperspb.UInt32(bits)
			}
			actions = append(actions, &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_MaskedRemoteAddress_{MaskedRemoteAddress: m}})
		}
		for _, c := range rule.JWTClaims {
			a, err := claimAction(c, sec)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", rule.ID, err)
			}
			actions = append(actions, a)
		}
		out.RateLimits = append(out.RateLimits, &routev3.RateLimit{Actions: actions})
	}
	return pack(out)
}

// claimAction reads a claim of the token sec's provider verified.
func claimAction(c ir.RateLimitJWTClaim, sec *ir.Security) (*routev3.RateLimit_Action, error) {
	found := false
	if sec != nil && sec.JWT != nil {
		for _, p := range sec.JWT.Providers {
			found = found || p.Name == c.Provider
		}
	}
	if !found {
		return nil, fmt.Errorf("JWT claim %s: the route's security has no jwt provider %q", c.Claim, c.Provider)
	}
	path := []*metadatav3.MetadataKey_PathSegment{{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: jwtProviderName(sec, c.Provider)}}}
	for _, k := range strings.Split(c.Claim, ".") {
		path = append(path, &metadatav3.MetadataKey_PathSegment{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: k}})
	}
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
		DescriptorKey: claimDescriptorKey(c.Claim),
		MetadataKey:   &metadatav3.MetadataKey{Key: jwtMetadataNamespace, Path: path},
		Source:        routev3.RateLimit_Action_MetaData_DYNAMIC,
	}}}, nil
}

func headerMatchAction(key string, m *routev3.HeaderMatcher) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_HeaderValueMatch_{
		HeaderValueMatch: &routev3.RateLimit_Action_HeaderValueMatch{
			DescriptorKey:   key,
			DescriptorValue: descriptorMatched,
			ExpectMatch:     wrapperspb.Bool(true),
			Headers:         []*routev3.HeaderMatcher{m},
		},
	}}
}
