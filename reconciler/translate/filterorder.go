package translate

import (
	"sort"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// filterSlot is the place of an HTTP filter in every HttpConnectionManager
// gitxds builds: the filters of a chain run in slot order. This table is
// the one place the order is decided; docs/architecture.md ("HTTP filter
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
	// slotAPIKeyAuth: one Lua filter per SecurityPolicy with apiKeyAuth
	// (apikeyauth.go), where Envoy Gateway puts api_key_auth among the
	// authentication filters.
	slotAPIKeyAuth
	slotJWTAuthn
	// slotExtAuthz: one filter per SecurityPolicy with extAuth.
	slotExtAuthz
	// The default slots of EnvoyExtensionPolicy filters, one per kind; a
	// policy may place its filters before or after another slot instead
	// (ExtensionAnchors).
	slotExtProc
	slotWasm
	slotLua
	// slotRBAC enforces SecurityPolicy authorization, with the jwt_authn
	// payloads in the dynamic metadata.
	slotRBAC
	slotLocalRateLimit
	// slotRateLimit is the global rate limit (the Gateway's rate limit
	// service): after authorization, so that a refused request is not
	// counted.
	slotRateLimit

	// slotStatefulSession sends a request of a session (Gateway API
	// sessionPersistence) to the endpoint that served it, once the request
	// is let through.
	slotStatefulSession

	// slotRouter is last: the router is the terminal filter.
	slotRouter
)

// Placements of a filter relative to its slot: an EnvoyExtensionPolicy's
// filters placed before or after a built-in filter sit just before or
// after that filter's slot.
const (
	placeBefore = -1
	placeAt     = 0
	placeAfter  = 1
)

// slottedFilter is an HTTP filter and its place.
type slottedFilter struct {
	slot filterSlot
	// place is placeBefore, placeAt or placeAfter its slot.
	place int
	// policy and kind order the filters an EnvoyExtensionPolicy places at
	// one point: by policy, then kind (ext_proc, wasm, lua).
	policy string
	kind   filterSlot
	filter *hcmv3.HttpFilter
}

// HTTPFilter is the name of a built-in HTTP filter an EnvoyExtensionPolicy
// may place its filters next to.
type HTTPFilter string

// ExtensionAnchors are the built-in filters an EnvoyExtensionPolicy's
// order may name, with their slots.
var ExtensionAnchors = []HTTPFilter{
	"envoy.filters.http.cors",
	"envoy.filters.http.basic_auth",
	"envoy.filters.http.jwt_authn",
	"envoy.filters.http.ext_authz",
	"envoy.filters.http.rbac",
	"envoy.filters.http.local_ratelimit",
	"envoy.filters.http.ratelimit",
}

var anchorSlots = map[HTTPFilter]filterSlot{
	"envoy.filters.http.cors":            slotCORS,
	"envoy.filters.http.basic_auth":      slotBasicAuth,
	"envoy.filters.http.jwt_authn":       slotJWTAuthn,
	"envoy.filters.http.ext_authz":       slotExtAuthz,
	"envoy.filters.http.rbac":            slotRBAC,
	"envoy.filters.http.local_ratelimit": slotLocalRateLimit,
	"envoy.filters.http.ratelimit":       slotRateLimit,
}

// IsExtensionAnchor reports whether name is one of ExtensionAnchors.
func IsExtensionAnchor(name string) bool {
	_, ok := anchorSlots[HTTPFilter(name)]
	return ok
}

// extensionPlace is where the filters of a policy of kind go: before or
// after the anchor it names, or the kind's own slot.
func extensionPlace(kind filterSlot, before, after string) (filterSlot, int) {
	switch {
	case before != "":
		return anchorSlots[HTTPFilter(before)], placeBefore
	case after != "":
		return anchorSlots[HTTPFilter(after)], placeAfter
	default:
		return kind, placeAt
	}
}

// orderFilters sorts filters by slot and place, then by policy, kind and
// name: the same set always gives the same chain. A filter name given
// twice (the same policy's filter from several routes) is kept once.
func orderFilters(in []slottedFilter) []*hcmv3.HttpFilter {
	sort.SliceStable(in, func(i, j int) bool {
		a, b := in[i], in[j]
		if a.slot != b.slot {
			return a.slot < b.slot
		}
		if a.place != b.place {
			return a.place < b.place
		}
		if a.policy != b.policy {
			return a.policy < b.policy
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.filter.GetName() < b.filter.GetName()
	})
	out := make([]*hcmv3.HttpFilter, 0, len(in))
	seen := map[string]bool{}
	for _, f := range in {
		if seen[f.filter.GetName()] {
			continue
		}
		seen[f.filter.GetName()] = true
		out = append(out, f.filter)
	}
	return out
}
