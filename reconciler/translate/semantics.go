package translate

import (
	"fmt"
	"math"
	"regexp/syntax"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	earlyheadersv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// The Envoy-semantics check: the rules Envoy (and, for the GRPC class, a
// gRFC A28 client) enforces when it loads a resource that
// protoc-gen-validate does not express, so ValidateAll passes what the
// proxy then rejects (NACK), and with it the whole resource. Every rule
// names the Envoy source file and function it mirrors. Rules that PGV
// already covers (header name syntax, required fields, enum values,
// path_separated_prefix syntax) are not repeated. checkSemantics runs on
// every Translate, so in every build and in preview; CheckResource is the
// same rules for one resource, for clients that receive resources (the
// Envoy-like client of reconciler/diff/accept).

// maxRegexProgramSize is Envoy's default error level for the size of a
// compiled RE2 program: re2.max_program_size.error_level, 100 unless the
// runtime raises it (source/common/common/regex.cc,
// CompiledGoogleReMatcher's constructor).
const maxRegexProgramSize = 100

// checkSemantics runs the rules on every resource of a class and reports
// each violation on the object that caused it.
func (t *translation) checkSemantics(class snapshot.Class, res *snapshot.Resources) {
	for _, l := range res.Listeners {
		for _, err := range CheckResource(class, l) {
			t.failResource(class, kindListener, l.GetName(), err)
		}
	}
	for _, rc := range res.Routes {
		for _, v := range checkRouteConfig(class, rc) {
			if v.route != "" {
				t.fail(t.routeOwner(v.route), "route "+v.route, class, v.err)
			} else {
				t.failResource(class, kindRouteConfig, rc.GetName(), v.err)
			}
		}
	}
	for _, c := range res.Clusters {
		for _, err := range checkCluster(class, c) {
			t.fail(t.clusterOwner(c.GetName()), "cluster "+c.GetName(), class, err)
		}
	}
	checkListenerAddresses(res.Listeners, func(name string, err error) {
		t.failResource(class, kindListener, name, err)
	})
	t.checkPerRouteFilters(class, res)
}

// CheckResource applies the rules that concern one resource alone to a
// listener, route configuration or cluster of class; other resources have
// none.
func CheckResource(class snapshot.Class, m proto.Message) []error {
	var out []error
	switch r := m.(type) {
	case *listenerv3.Listener:
		out = append(out, checkListener(r)...)
	case *clusterv3.Cluster:
		out = append(out, checkCluster(class, r)...)
	case *routev3.RouteConfiguration:
		for _, v := range checkRouteConfig(class, r) {
			err := v.err
			if v.route != "" {
				err = fmt.Errorf("route %s: %w", v.route, err)
			}
			out = append(out, err)
		}
	}
	return out
}

// violation is a broken rule, on a route of the route configuration when
// route is set.
type violation struct {
	route string
	err   error
}

func checkRouteConfig(class snapshot.Class, rc *routev3.RouteConfiguration) []violation {
	var out []violation
	add := func(route string, errs ...error) {
		for _, err := range errs {
			out = append(out, violation{route, err})
		}
	}
	if class.IsEnvoy() {
		add("", checkDomains(rc)...)
		add("", checkHeaderMutations(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove())...)
		add("", checkHeaderMutations(rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove())...)
	}
	maxBody := uint32(defaultMaxDirectResponseBody)
	if m := rc.GetMaxDirectResponseBodySizeBytes(); m != nil {
		maxBody = m.GetValue()
	}
	for _, vh := range rc.GetVirtualHosts() {
		if class.IsEnvoy() {
			add("", checkPerFilterConfigs(vh.GetTypedPerFilterConfig())...)
			add("", checkHeaderMutations(vh.GetRequestHeadersToAdd(), vh.GetRequestHeadersToRemove())...)
			add("", checkHeaderMutations(vh.GetResponseHeadersToAdd(), vh.GetResponseHeadersToRemove())...)
		}
		for _, r := range vh.GetRoutes() {
			add(r.GetName(), checkRoute(class, r)...)
			// ConfigUtility::parseDirectResponseBody
			// (source/common/router/config_utility.cc): "response body
			// size is N bytes; maximum is M".
			if b := r.GetDirectResponse().GetBody(); b != nil && uint32(len(b.GetInlineString())+len(b.GetInlineBytes())) > maxBody {
				add(r.GetName(), fmt.Errorf("direct response body of %d bytes is over Envoy's maximum of %d", len(b.GetInlineString())+len(b.GetInlineBytes()), maxBody))
			}
		}
	}
	return out
}

// defaultMaxDirectResponseBody is Envoy's limit on a direct response body
// when the RouteConfiguration sets none
// (max_direct_response_body_size_bytes, 4 KiB).
const defaultMaxDirectResponseBody = 4096

func checkRoute(class snapshot.Class, r *routev3.Route) []error {
	var out []error
	if class == snapshot.GRPC {
		// gRFC A28 ("Route action"): a client NACKs a RouteConfiguration
		// with a route whose action is neither route nor
		// non_forwarding_action. gRPC-Go accepts it and fails the RPCs, but
		// other implementations reject the whole resource.
		if r.GetRoute() == nil && r.GetNonForwardingAction() == nil {
			out = append(out, fmt.Errorf("gRFC A28: a proxyless gRPC client rejects a route whose action is not route (got %s)", actionName(r)))
		}
	} else {
		out = append(out, checkPerFilterConfigs(r.GetTypedPerFilterConfig())...)
		out = append(out, checkHeaderMutations(r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove())...)
		out = append(out, checkHeaderMutations(r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove())...)
	}
	if wc := r.GetRoute().GetWeightedClusters(); wc != nil {
		// source/common/router/config_impl.cc, RouteEntryImplBase (the
		// weighted clusters' total): "Sum of weights in the
		// weighted_cluster must be greater than 0", and it must fit in
		// 32 bits. gRFC A28 requires a total above 0 too.
		var sum uint64
		for _, c := range wc.GetClusters() {
			sum += uint64(c.GetWeight().GetValue())
		}
		switch {
		case sum == 0:
			out = append(out, fmt.Errorf("the weights of the weighted clusters add up to 0"))
		case sum > math.MaxUint32:
			out = append(out, fmt.Errorf("the weights of the weighted clusters add up to %d, more than %d", sum, uint32(math.MaxUint32)))
		}
	}
	if a := r.GetRoute(); a != nil {
		// RouteEntryImplBase (source/common/router/config_impl.cc): one
		// path rewrite only ("Specify only one of prefix_rewrite,
		// regex_rewrite or path_rewrite_policy").
		n := 0
		for _, set := range []bool{a.GetPrefixRewrite() != "", a.GetRegexRewrite() != nil, a.GetPathRewritePolicy() != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			out = append(out, fmt.Errorf("more than one of prefix_rewrite, regex_rewrite and path_rewrite_policy"))
		}
		// RetryPolicyImpl (source/common/router/config_impl.cc, or
		// retry_policy_impl.cc): "max_interval must be greater than or
		// equal to the base_interval".
		if bo := a.GetRetryPolicy().GetRetryBackOff(); bo.GetMaxInterval() != nil && bo.GetMaxInterval().AsDuration() < bo.GetBaseInterval().AsDuration() {
			out = append(out, fmt.Errorf("retry back-off max_interval %v is shorter than base_interval %v", bo.GetMaxInterval().AsDuration(), bo.GetBaseInterval().AsDuration()))
		}
	}
	walkMessages(r.ProtoReflect(), func(m proto.Message) {
		if rm, ok := m.(*matcherv3.RegexMatcher); ok {
			if err := checkRegex(rm.GetRegex()); err != nil {
				out = append(out, err)
			}
		}
	})
	return out
}

func actionName(r *routev3.Route) string {
	if a := r.ProtoReflect().WhichOneof(r.ProtoReflect().Descriptor().Oneofs().ByName("action")); a != nil {
		return string(a.Name())
	}
	return "none"
}

// checkRegex mirrors CompiledGoogleReMatcher (source/common/common/regex.cc):
// the expression compiles as RE2, and its program is at most
// maxRegexProgramSize instructions. Go's regexp is RE2's design and its
// compiled program counts instructions the same way; the counts are close
// but not identical (RE2 optimizes some programs further), so an expression
// within a few instructions of the limit may be judged differently.
func checkRegex(re string) error {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return fmt.Errorf("regular expression %q is not RE2: %w", re, err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return fmt.Errorf("regular expression %q is not RE2: %w", re, err)
	}
	if n := len(prog.Inst); n > maxRegexProgramSize {
		return fmt.Errorf("regular expression %q compiles to about %d RE2 instructions, more than Envoy's default limit of %d (re2.max_program_size.error_level): simplify it", re, n, maxRegexProgramSize)
	}
	return nil
}

// checkDomains mirrors the RouteMatcher constructor
// (source/common/router/config_impl.cc): domains are compared lowercased,
// and one RouteConfiguration may hold each exact domain, each prefix or
// suffix wildcard, and "*" only once ("Only unique values for domains are
// permitted", "Only a single wildcard domain is permitted").
func checkDomains(rc *routev3.RouteConfiguration) []error {
	var out []error
	seen := map[string]string{} // domain -> virtual host
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			k := strings.ToLower(d)
			if other, dup := seen[k]; dup {
				out = append(out, fmt.Errorf("domain %q is in virtual hosts %q and %q", d, other, vh.GetName()))
				continue
			}
			seen[k] = vh.GetName()
		}
	}
	return out
}

// checkHeaderMutations mirrors the header parser Envoy builds for
// request_headers_to_add/remove and response_headers_to_add/remove
// (source/common/router/header_parser.cc, HeaderParser::configure and
// parseHttpHeaderFormatter):
//   - Host and ":"-prefixed headers may not be added, set or removed
//     (Http::HeaderUtility::isModifiableHeader);
//   - a value is a substitution format string
//     (SubstitutionFormatParser::parse,
//     source/common/formatter/substitution_formatter.h): gitxds sends
//     only literal values, so every "%" must be escaped as "%%"; a lone
//     "%" fails the parse, and "%NAME%" would be replaced by Envoy.
func checkHeaderMutations(add []*corev3.HeaderValueOption, remove []string) []error {
	var out []error
	for _, h := range add {
		k := h.GetHeader().GetKey()
		if !modifiableHeader(k) {
			out = append(out, fmt.Errorf("header %q cannot be added or set: Envoy does not modify Host or \":\"-prefixed headers", k))
		}
		if err := literalFormat(h.GetHeader().GetValue()); err != nil {
			out = append(out, fmt.Errorf("header %q: %w", k, err))
		}
	}
	for _, k := range remove {
		if !modifiableHeader(k) {
			out = append(out, fmt.Errorf("header %q cannot be removed: Envoy does not remove Host or \":\"-prefixed headers", k))
		}
	}
	return out
}

func modifiableHeader(k string) bool {
	return !strings.HasPrefix(k, ":") && !strings.EqualFold(k, hostHeaderName)
}

// hostHeaderName is the Host header.
const hostHeaderName = "host"

// literalFormat reports whether a format string is a literal: every "%"
// is part of a "%%" escape.
func literalFormat(v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			i++
			continue
		}
		return fmt.Errorf("value %q has a \"%%\" at byte %d that is not escaped as \"%%%%\": Envoy reads it as a format command", v, i)
	}
	return nil
}

// checkListener applies the rules of one listener: its filter chain
// matches are unique (FilterChainManagerImpl::addFilterChains,
// source/common/listener_manager/filter_chain_manager_impl.cc: "multiple
// filter chains with the same matching rules are defined"), and the header
// mutations of its HttpConnectionManagers' early header mutation
// extensions follow the header parser's rules (their append mutations are
// Router::HeadersToAddEntry: AppendMutation in
// source/common/http/header_mutation.cc).
func checkListener(l *listenerv3.Listener) []error {
	var out []error
	seen := map[string]string{}
	opts := proto.MarshalOptions{Deterministic: true}
	cms, _ := xdsres.ConnectionManagers(l)
	for _, fc := range l.GetFilterChains() {
		m := fc.GetFilterChainMatch()
		if m == nil {
			m = &listenerv3.FilterChainMatch{}
		}
		b, err := opts.Marshal(m)
		if err != nil {
			out = append(out, err)
			continue
		}
		if other, dup := seen[string(b)]; dup {
			out = append(out, fmt.Errorf("filter chains %q and %q have the same match", other, fc.GetName()))
		}
		seen[string(b)] = fc.GetName()
		for _, cm := range cms {
			if cm.Chain != fc {
				continue
			}
			hcm := cm.HCM
			for _, err := range checkHTTPFilters(hcm) {
				out = append(out, fmt.Errorf("filter chain %q: %w", fc.GetName(), err))
			}
			for _, err := range checkFilterChain(hcm) {
				out = append(out, fmt.Errorf("filter chain %q: %w", fc.GetName(), err))
			}
			for _, ext := range hcm.GetEarlyHeaderMutationExtensions() {
				hm := &earlyheadersv3.HeaderMutation{}
				if ext.GetTypedConfig().UnmarshalTo(hm) != nil {
					continue
				}
				for _, mu := range hm.GetMutations() {
					var add []*corev3.HeaderValueOption
					var remove []string
					if a := mu.GetAppend(); a != nil {
						add = append(add, a)
					}
					if r := mu.GetRemove(); r != "" {
						remove = append(remove, r)
					}
					for _, err := range checkHeaderMutations(add, remove) {
						out = append(out, fmt.Errorf("early header mutation %q: %w", ext.GetName(), err))
					}
				}
			}
		}
	}
	return out
}

// checkListenerAddresses mirrors ListenerManagerImpl::addOrUpdateListener
// (source/common/listener_manager/listener_manager_impl.cc): two listeners
// cannot bind one address ("has duplicate address ... as existing
// listener").
func checkListenerAddresses(ls []*listenerv3.Listener, fail func(name string, err error)) {
	seen := map[string]string{}
	for _, l := range ls {
		sa := l.GetAddress().GetSocketAddress()
		if sa == nil {
			continue // an API listener
		}
		k := fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
		if other, dup := seen[k]; dup {
			fail(l.GetName(), fmt.Errorf("address %s is also listener %q's", k, other))
			continue
		}
		seen[k] = l.GetName()
	}
}

// walkMessages calls fn for every message inside m, m included, and for
// the messages packed in Anys (typed_per_filter_config) and theirs.
func walkMessages(m protoreflect.Message, fn func(proto.Message)) {
	fn(m.Interface())
	xdsres.EachChild(m, func(x protoreflect.Message) {
		if a, ok := x.Interface().(*anypb.Any); ok {
			if inner, err := a.UnmarshalNew(); err == nil {
				walkMessages(inner.ProtoReflect(), fn)
			}
			return
		}
		walkMessages(x, fn)
	})
}

// checkCluster: the load balancing rules of a cluster.
//
// Envoy: a Maglev table size must be prime (PGV only bounds it to
// 5000011); Envoy throws "The table size of maglev must be prime number"
// when it creates the load balancer
// (source/extensions/load_balancing_policies/maglev/maglev_lb.cc,
// MaglevLoadBalancer's constructor).
//
// gRPC: gRPC-Go takes lb_policy ROUND_ROBIN, RING_HASH with hash function
// XX_HASH, and LEAST_REQUEST with choice_count at least 2, and NACKs any
// other (grpc-go internal/xds/xdsclient/xdsresource/unmarshal_cds.go,
// validateClusterAndConstructClusterUpdate; gRFC A42, A48).
func checkCluster(class snapshot.Class, c *clusterv3.Cluster) []error {
	var out []error
	if class.IsEnvoy() {
		if m := c.GetMaglevLbConfig(); m != nil && m.GetTableSize() != nil && !xdsres.MaglevTableSize(m.GetTableSize().GetValue()) {
			out = append(out, fmt.Errorf("maglev_lb_config.table_size %d is not a prime number; Envoy refuses the cluster", m.GetTableSize().GetValue()))
		}
		return out
	}
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
	case clusterv3.Cluster_RING_HASH:
		if f := c.GetRingHashLbConfig().GetHashFunction(); f != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			out = append(out, fmt.Errorf("ring_hash_lb_config.hash_function %v: gRPC supports only XX_HASH", f))
		}
	case clusterv3.Cluster_LEAST_REQUEST:
		if cc := c.GetLeastRequestLbConfig().GetChoiceCount(); cc != nil && cc.GetValue() < 2 {
			out = append(out, fmt.Errorf("least_request_lb_config.choice_count %d: gRPC requires at least 2", cc.GetValue()))
		}
	default:
		out = append(out, fmt.Errorf("lb_policy %v is not supported by gRPC (ROUND_ROBIN, RING_HASH, LEAST_REQUEST)", c.GetLbPolicy()))
	}
	return out
}
