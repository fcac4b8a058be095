package translate

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// checkFilterChain applies the rules Envoy enforces when it builds the
// HTTP filter chain of an HttpConnectionManager, beyond ValidateAll:
//   - the last filter cannot be disabled ("the last (terminal) filter ...
//     in the chain cannot be disabled by default",
//     FilterChainHelper::processFilter, source/common/http/
//     filter_chain_helper.h);
//   - the router, a terminal filter, must be last and only last
//     (Config::Utility::validateTerminalFilters, called from
//     processFilter; source/common/config/utility.cc);
//   - a Lua filter sets at most one of inline_code and
//     default_source_code ("Only one of `inline_code` or
//     `default_source_code` can be set for the Lua filter",
//     FilterConfig::FilterConfig, source/extensions/filters/http/lua/
//     lua_filter.cc).
func checkFilterChain(hcm *hcmv3.HttpConnectionManager) []error {
	var out []error
	fs := hcm.GetHttpFilters()
	for i, f := range fs {
		last := i == len(fs)-1
		if last && f.GetDisabled() {
			out = append(out, fmt.Errorf("HTTP filter %q is last and disabled: Envoy refuses a disabled terminal filter", f.GetName()))
		}
		router := f.GetTypedConfig().GetTypeUrl() == routerTypeURL
		if router && !last {
			out = append(out, fmt.Errorf("HTTP filter %q (the router) is not last: Envoy requires the terminal filter last", f.GetName()))
		}
		if last && !router {
			out = append(out, fmt.Errorf("the last HTTP filter %q is not the router: Envoy requires a terminal filter last", f.GetName()))
		}
		lua := &luav3.Lua{}
		if f.GetTypedConfig().MessageIs(lua) && f.GetTypedConfig().UnmarshalTo(lua) == nil &&
			lua.GetInlineCode() != "" && lua.GetDefaultSourceCode() != nil {
			out = append(out, fmt.Errorf("Lua filter %q sets both inline_code and default_source_code", f.GetName()))
		}
	}
	return out
}

// routerTypeURL is the type of the router filter's config.
const routerTypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

// checkPerFilterConfigs applies the rule of PerFilterConfigs
// (source/common/router/per_filter_config.cc): a FilterConfig that does
// not disable its filter must have a config ("Empty route/virtual host
// per filter configuration for <name> filter"); an empty Any there enables
// the filter (enableFilter).
func checkPerFilterConfigs(configs map[string]*anypb.Any) []error {
	var out []error
	for _, name := range sortedNames(configs) {
		fc := &routev3.FilterConfig{}
		a := configs[name]
		if !a.MessageIs(fc) || a.UnmarshalTo(fc) != nil {
			continue
		}
		if !fc.GetDisabled() && fc.GetConfig() == nil {
			out = append(out, fmt.Errorf("typed_per_filter_config %q: a FilterConfig that does not disable the filter needs a config (an empty one enables it)", name))
		}
	}
	return out
}
