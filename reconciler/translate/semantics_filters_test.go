package translate

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

func httpFilter(t *testing.T, name string, cfg *anypb.Any, disabled bool) *hcmv3.HttpFilter {
	t.Helper()
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}, Disabled: disabled}
}

// TestCheckFilterChain covers each rule of checkFilterChain with a chain
// that breaks it, and the chains gitxds builds, which break none.
func TestCheckFilterChain(t *testing.T) {
	router, err := routerFilter()
	if err != nil {
		t.Fatal(err)
	}
	lua, err := pack(&luav3.Lua{DefaultSourceCode: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "function envoy_on_request(h) end"}}})
	if err != nil {
		t.Fatal(err)
	}
	both, err := pack(&luav3.Lua{InlineCode: "function envoy_on_request(h) end", DefaultSourceCode: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	disabledRouter := httpFilter(t, router.GetName(), router.GetTypedConfig(), true)
	for _, c := range []struct {
		name    string
		filters []*hcmv3.HttpFilter
		want    string // "" for no error
	}{
		{"router last", []*hcmv3.HttpFilter{httpFilter(t, "lua", lua, true), router}, ""},
		{"router disabled", []*hcmv3.HttpFilter{disabledRouter}, "last and disabled"},
		{"router not last", []*hcmv3.HttpFilter{router, httpFilter(t, "lua", lua, false)}, "is not last"},
		{"lua both sources", []*hcmv3.HttpFilter{httpFilter(t, "lua", both, true), router}, "both inline_code and default_source_code"},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := checkFilterChain(&hcmv3.HttpConnectionManager{HttpFilters: c.filters})
			if c.want == "" {
				if len(errs) > 0 {
					t.Fatalf("want no error, got %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, errs)
			}
		})
	}
}

// TestCheckPerFilterConfigs: a FilterConfig without config that does not
// disable its filter is refused; enableFilter's and a disabling one pass.
func TestCheckPerFilterConfigs(t *testing.T) {
	on, err := enableFilter()
	if err != nil {
		t.Fatal(err)
	}
	off, err := pack(&routev3.FilterConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := pack(&routev3.FilterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkPerFilterConfigs(map[string]*anypb.Any{"a": on, "b": off}); len(errs) > 0 {
		t.Fatalf("enable and disable: want no error, got %v", errs)
	}
	errs := checkPerFilterConfigs(map[string]*anypb.Any{"a": on, "bad": empty})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"bad"`) {
		t.Fatalf("want one error naming \"bad\", got %v", errs)
	}
}
