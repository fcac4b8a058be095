package translate

import (
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// checkHTTPFilters applies the load-time rules of the HTTP filters of an
// HttpConnectionManager that protoc-gen-validate does not express.
func checkHTTPFilters(hcm *hcmv3.HttpConnectionManager) []error {
	var out []error
	for _, f := range hcm.GetHttpFilters() {
		switch {
		case f.GetTypedConfig().MessageIs(&jwtauthnv3.JwtAuthentication{}):
			cfg := &jwtauthnv3.JwtAuthentication{}
			if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
				out = append(out, fmt.Errorf("filter %q: %w", f.GetName(), err))
				continue
			}
			for _, err := range checkJWTAuthn(cfg) {
				out = append(out, fmt.Errorf("filter %q: %w", f.GetName(), err))
			}
		case f.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{}):
			cfg := &extauthzv3.ExtAuthz{}
			if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
				out = append(out, fmt.Errorf("filter %q: %w", f.GetName(), err))
				continue
			}
			// FilterConfig's constructor
			// (source/extensions/filters/http/ext_authz/ext_authz.cc):
			// "Invalid duplicate configuration for allowed_headers."
			if cfg.GetAllowedHeaders() != nil && cfg.GetHttpService().GetAuthorizationRequest().GetAllowedHeaders() != nil {
				out = append(out, fmt.Errorf("filter %q: allowed_headers is set both on the filter and in http_service.authorization_request", f.GetName()))
			}
		}
	}
	return out
}

// checkJWTAuthn mirrors Verifier::create
// (source/extensions/filters/http/jwt_authn/verifier.cc): every provider a
// requirement names must be configured ("Required provider ['...'] is not
// configured."), in requirement_map, rules and filter_state_rules alike.
func checkJWTAuthn(cfg *jwtauthnv3.JwtAuthentication) []error {
	var out []error
	var walk func(where string, r *jwtauthnv3.JwtRequirement)
	walk = func(where string, r *jwtauthnv3.JwtRequirement) {
		name := r.GetProviderName()
		if pa := r.GetProviderAndAudiences(); pa != nil {
			name = pa.GetProviderName()
		}
		if name != "" && cfg.GetProviders()[name] == nil {
			out = append(out, fmt.Errorf("%s: required provider %q is not configured", where, name))
		}
		for _, sub := range r.GetRequiresAny().GetRequirements() {
			walk(where, sub)
		}
		for _, sub := range r.GetRequiresAll().GetRequirements() {
			walk(where, sub)
		}
	}
	for _, k := range sortedNames(cfg.GetRequirementMap()) {
		walk(fmt.Sprintf("requirement_map[%q]", k), cfg.GetRequirementMap()[k])
	}
	for i, r := range cfg.GetRules() {
		walk(fmt.Sprintf("rules[%d]", i), r.GetRequires())
	}
	for _, k := range sortedNames(cfg.GetFilterStateRules().GetRequires()) {
		walk(fmt.Sprintf("filter_state_rules[%q]", k), cfg.GetFilterStateRules().GetRequires()[k])
	}
	return out
}

// checkPerRouteFilters checks, for every HttpConnectionManager and the
// route configurations it serves (by RDS or by its scopes), that a
// route's typed_per_filter_config names only filters of that manager. A
// name Envoy does not find is not an error to Envoy: PerFilterConfigs
// builds it by its type URL alone (source/common/router/
// per_filter_config.cc), and no filter ever reads it, so a policy would
// silently not apply. A jwt_authn PerRouteConfig must also name a
// requirement of that filter: Envoy answers such a request 403 "Wrong
// requirement_name" (FilterConfigImpl::findPerRouteVerifier,
// source/extensions/filters/http/jwt_authn/filter_config.cc).
func (t *translation) checkPerRouteFilters(class snapshot.Class, res *snapshot.Resources) {
	rcs := map[string]*routev3.RouteConfiguration{}
	for _, rc := range res.Routes {
		rcs[rc.GetName()] = rc
	}
	clusters := map[string]bool{}
	for _, c := range res.Clusters {
		clusters[c.GetName()] = true
	}
	scoped := map[string][]string{} // scoped routes name -> route configurations
	for _, sc := range res.ScopedRoutes {
		set := scopeSet(sc.GetName())
		scoped[set] = append(scoped[set], sc.GetRouteConfigurationName())
	}
	for _, l := range res.Listeners {
		cms, err := xdsres.ConnectionManagers(l)
		if err != nil {
			continue // checkConsistency reports it
		}
		for _, cm := range cms {
			hcm := cm.HCM
			filters := map[string]bool{}
			requirements := map[string]bool{}
			for _, c := range filterClusters(hcm) {
				if !clusters[c] {
					t.failResource(class, kindListener, l.GetName(), fmt.Errorf("HTTP filter cluster %q does not exist", c))
				}
			}
			for _, f := range hcm.GetHttpFilters() {
				filters[f.GetName()] = true
				jwt := &jwtauthnv3.JwtAuthentication{}
				if f.GetTypedConfig().MessageIs(jwt) && f.GetTypedConfig().UnmarshalTo(jwt) == nil {
					for k := range jwt.GetRequirementMap() {
						requirements[k] = true
					}
				}
			}
			names := []string{hcm.GetRds().GetRouteConfigName()}
			if sr := hcm.GetScopedRoutes(); sr != nil {
				names = scoped[sr.GetName()]
			}
			sort.Strings(names)
			for _, n := range names {
				for _, v := range perRouteViolations(rcs[n], filters, requirements) {
					t.fail(t.routeOwner(v.route), "route "+v.route, class, fmt.Errorf("listener %s: %w", l.GetName(), v.err))
				}
			}
		}
	}
}

// filterClusters are the clusters the HTTP filters of hcm call: JWKS
// hosts and authorization services. Envoy accepts a missing one (ext_authz
// creates its gRPC client with skip_cluster_check, ExtAuthzFilterConfig in
// source/extensions/filters/http/ext_authz/config.cc; a JWKS fetch finds
// no cluster at run time) and then fails every request of the routes
// that use it, so gitxds refuses it.
func filterClusters(hcm *hcmv3.HttpConnectionManager) []string {
	var out []string
	for _, f := range hcm.GetHttpFilters() {
		jwt, authz := &jwtauthnv3.JwtAuthentication{}, &extauthzv3.ExtAuthz{}
		switch {
		case f.GetTypedConfig().MessageIs(jwt) && f.GetTypedConfig().UnmarshalTo(jwt) == nil:
			for _, k := range sortedNames(jwt.GetProviders()) {
				if c := jwt.GetProviders()[k].GetRemoteJwks().GetHttpUri().GetCluster(); c != "" {
					out = append(out, c)
				}
			}
		case f.GetTypedConfig().MessageIs(authz) && f.GetTypedConfig().UnmarshalTo(authz) == nil:
			if c := authz.GetGrpcService().GetEnvoyGrpc().GetClusterName(); c != "" {
				out = append(out, c)
			}
			if c := authz.GetHttpService().GetServerUri().GetCluster(); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

func perRouteViolations(rc *routev3.RouteConfiguration, filters, requirements map[string]bool) []violation {
	var out []violation
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			for _, name := range sortedNames(r.GetTypedPerFilterConfig()) {
				if !filters[name] {
					out = append(out, violation{r.GetName(), fmt.Errorf("typed_per_filter_config names filter %q, which the listener's HttpConnectionManager does not have", name)})
					continue
				}
				pr := &jwtauthnv3.PerRouteConfig{}
				if a := r.GetTypedPerFilterConfig()[name]; a.MessageIs(pr) && a.UnmarshalTo(pr) == nil {
					if n := pr.GetRequirementName(); n != "" && !requirements[n] {
						out = append(out, violation{r.GetName(), fmt.Errorf("jwt_authn requirement_name %q is not in the filter's requirement_map", n)})
					}
				}
			}
		}
	}
	return out
}
