package translate

import (
	"sort"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// filterSlot is the place of an HTTP filter in every HttpConnectionManager
// gitxds builds: the filters of a chain run in slot order, and filters of
// one slot (one per policy) in the order of their names. This table is the
// one place the order is decided; docs/architecture.md ("HTTP filter
// order") explains it.
//
// The order follows Envoy Gateway's (newOrderedHTTPFilter in
// internal/xds/translator/httpfilters.go: cors, header mutation, ext_authz,
// api_key_auth, basic_auth, oauth2, jwt_authn, lua/ext_proc/wasm, rbac,
// local_ratelimit, ratelimit, router) with one change: jwt_authn runs
// before ext_authz. For token separation the authorization service mints
// the internal token from the caller's verified identity: after jwt_authn
// it reads the verified claims (claimToHeaders, and for gRPC the
// jwt_authn payload in the CheckRequest's metadata context), never has to
// validate the external token itself, and never sees it when the provider
// does not forward it; a request with a bad token is refused before the
// authorization service is called.
type filterSlot int

const (
	// slotCORS answers preflight requests before any authentication.
	slotCORS filterSlot = iota
	// slotSecurityHeaders removes the client's copies of the headers the
	// security filters set (claim headers, the internal token), before
	// they run: envoy.filters.http.header_mutation.
	slotSecurityHeaders
	slotBasicAuth
	slotJWTAuthn
	// slotExtAuthz: one filter per SecurityPolicy with extAuth.
	slotExtAuthz
	// Slots of EnvoyExtensionPolicy filters (ext_proc, wasm, lua) go here.

	// slotRBAC enforces SecurityPolicy authorization, with the jwt_authn
	// payloads in the dynamic metadata.
	slotRBAC
	slotLocalRateLimit
	// The global rate limit's slot goes here.

	// slotStatefulSession sends a request of a session (Gateway API
	// sessionPersistence) to the endpoint that served it, once the request
	// is let through.
	slotStatefulSession

	// slotRouter is last: the router is the terminal filter.
	slotRouter
)

// slottedFilter is an HTTP filter and its slot.
type slottedFilter struct {
	slot   filterSlot
	filter *hcmv3.HttpFilter
}

// orderFilters sorts filters by slot, then by name: the same set always
// gives the same chain.
func orderFilters(in []slottedFilter) []*hcmv3.HttpFilter {
	sort.SliceStable(in, func(i, j int) bool {
		if in[i].slot != in[j].slot {
			return in[i].slot < in[j].slot
		}
		return in[i].filter.GetName() < in[j].filter.GetName()
	})
	out := make([]*hcmv3.HttpFilter, len(in))
	for i, f := range in {
		out[i] = f.filter
	}
	return out
}
