package translate

import (
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"gitxds.dev/gitxds/reconciler/ir"
)

// grpcRetryCodes are the retry_on conditions gRPC implements (gRFC A44);
// it ignores the others.
var grpcRetryCodes = map[string]bool{
	"cancelled":          true,
	"deadline-exceeded":  true,
	"internal":           true,
	"resource-exhausted": true,
	"unavailable":        true,
}

// grpcRoutes translates one IR route for proxyless gRPC (gRFC A28). It
// returns no route when gRPC could never select it, and two for a
// PathPrefix match, which gRPC cannot express in one.
//
// Only what gRPC implements is sent:
//   - query parameter matches: gRPC ignores such a route; it is left out.
//   - method matches: gRPC requests are POST and gRPC does not match the
//     :method pseudo-header, so a POST match is dropped and a route for any
//     other method is left out.
//   - PathPrefix (path elements) is `path: P` then `prefix: P/`;
//     path_separated_prefix is unknown to gRPC.
//   - timeouts: the overall timeout is max_stream_duration; idle and
//     per-try timeouts do not exist in gRPC.
//   - retries: only gRPC status conditions (A44), no per-try timeout.
//   - header modifiers, rewrites, mirrors, CORS and rate limits are left
//     out: gRPC has no such filters, and an unknown per-route filter config
//     would be NACKed.
//   - every route's action is `route`: gRFC A28 makes a client reject
//     (NACK) the whole RouteConfiguration if a route has another action
//     (gRPC-Go tolerates them, other implementations do not). Redirects,
//     direct responses, routes without a valid backend and routes to a
//     backend whose cluster cannot be served to gRPC (see grpcCluster)
//     route to invalidBackendCluster, an EDS cluster without endpoints:
//     their RPCs fail with UNAVAILABLE, and the route keeps its precedence
//     (no fall-through to a later route, no shift of the traffic to the
//     other backends).
//   - the share of unresolved backendRefs (InvalidWeight) goes to that
//     cluster too.
func (t *translation) grpcRoutes(r *ir.Route, available map[string]bool) ([]*routev3.Route, error) {
	m := &r.Match
	if len(m.Query) > 0 {
		return nil, nil
	}
	if m.Method != "" && !strings.EqualFold(m.Method, "POST") {
		return nil, nil
	}
	headers, err := headerMatchers(m.Headers)
	if err != nil {
		return nil, err
	}
	var paths []*routev3.RouteMatch
	switch m.PathType {
	case ir.PathExact:
		paths = append(paths, &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: m.Path}})
	case ir.PathPrefix, "":
		switch p := elementPrefix(m.Path); {
		case m.GRPC && m.Path != "":
			paths = append(paths, &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: m.Path}})
		case p == "":
			paths = append(paths, &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}})
		default:
			paths = append(paths,
				&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: p}},
				&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p + "/"}})
		}
	case ir.PathRegex:
		if err := compileRegex(m.Path); err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		paths = append(paths, &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: regexMatcher(m.Path)}})
	default:
		return nil, fmt.Errorf("unknown path match type %q", m.PathType)
	}

	var out []*routev3.Route
	for _, pm := range paths {
		pm.Headers = headers
		route := &routev3.Route{Name: r.Name, Match: pm}
		if err := grpcAction(route, r, available); err != nil {
			return nil, err
		}
		if err := route.ValidateAll(); err != nil {
			return nil, err
		}
		out = append(out, route)
	}
	return out, nil
}

func grpcAction(route *routev3.Route, r *ir.Route, available map[string]bool) error {
	unservable := func() {
		route.Action = &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: invalidBackendCluster},
		}}
	}
	switch {
	case r.DirectResponse != nil:
		unservable()
		return nil
	case r.Redirect != nil:
		if _, err := redirect(r); err != nil {
			return err // the same error as on Envoy nodes
		}
		unservable()
		return nil
	}
	for _, b := range r.Backends {
		if !available[b.Cluster] {
			unservable()
			return nil
		}
	}
	a := &routev3.RouteAction{}
	setClusters(a, r.Backends, r.InvalidWeight)
	a.HashPolicy = grpcHashPolicy(r.Hash)
	// gRFC A31: max_stream_duration bounds the call (the smaller of it and
	// the caller's deadline); absent, the caller's deadline alone applies,
	// which is what a disabled or unset request timeout means here.
	if d := overallTimeout(r); d > 0 {
		a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: duration(d)}
	}
	if rp, err := grpcRetry(r.Retry); err != nil {
		return err
	} else if rp != nil {
		a.RetryPolicy = rp
	}
	route.Action = &routev3.Route_Route{Route: a}
	return nil
}

// grpcRetry keeps the gRPC status conditions of a retry policy; a policy
// with none would not retry in gRPC and is left out, and so is a policy of
// 0 attempts: gRPC reads an absent num_retries as 1 and rejects 0 (gRFC
// A44; grpc-go xds/internal/xdsclient/xdsresource/unmarshal_rds.go,
// generateRetryConfig), so no policy is how a route does not retry.
func grpcRetry(r *ir.Retry) (*routev3.RetryPolicy, error) {
	if r == nil || r.Attempts == 0 {
		return nil, nil
	}
	var on []string
	for _, c := range r.RetryOn {
		if grpcRetryCodes[strings.ToLower(c)] {
			on = append(on, strings.ToLower(c))
		}
	}
	if len(on) == 0 {
		return nil, nil
	}
	rp := &routev3.RetryPolicy{RetryOn: strings.Join(on, ","), NumRetries: wrapperspb.UInt32(r.Attempts)}
	bo, err := backoff(r)
	if err != nil {
		return nil, err
	}
	rp.RetryBackOff = bo
	return rp, nil
}
