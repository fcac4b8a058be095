package diff

import (
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// overlap reports whether some request could match both routes. It is
// conservative: it says false only when it can prove the matches disjoint
// (different exact paths, prefixes of which neither extends the other, or
// the same header or query parameter required with different exact values).
func overlap(a, b *routev3.RouteMatch) bool {
	if !pathsOverlap(a, b) {
		return false
	}
	ha, hb := exactHeaders(a), exactHeaders(b)
	for name, va := range ha {
		if vb, ok := hb[name]; ok && va != vb {
			return false
		}
	}
	qa, qb := exactQuery(a), exactQuery(b)
	for name, va := range qa {
		if vb, ok := qb[name]; ok && va != vb {
			return false
		}
	}
	return true
}

// pathKind is how a match constrains the path: "exact", "prefix" or ""
// (anything: a regular expression or an unknown specifier).
func pathOf(m *routev3.RouteMatch) (kind, value string) {
	fold := m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	low := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Path:
		return "exact", low(p.Path)
	case *routev3.RouteMatch_Prefix:
		return "prefix", low(p.Prefix)
	case *routev3.RouteMatch_PathSeparatedPrefix:
		return "prefix", low(p.PathSeparatedPrefix)
	}
	return "", ""
}

func pathsOverlap(a, b *routev3.RouteMatch) bool {
	ka, va := pathOf(a)
	kb, vb := pathOf(b)
	if (ka != "" && kb != "") && ((a.GetCaseSensitive() != nil && !a.GetCaseSensitive().GetValue()) !=
		(b.GetCaseSensitive() != nil && !b.GetCaseSensitive().GetValue())) {
		va, vb = strings.ToLower(va), strings.ToLower(vb)
	}
	switch {
	case ka == "" || kb == "":
		return true
	case ka == "exact" && kb == "exact":
		return va == vb
	case ka == "exact":
		return strings.HasPrefix(va, vb)
	case kb == "exact":
		return strings.HasPrefix(vb, va)
	}
	return strings.HasPrefix(va, vb) || strings.HasPrefix(vb, va)
}

// exactHeaders are the headers a match requires to have one exact value,
// by lower-case name.
func exactHeaders(m *routev3.RouteMatch) map[string]string {
	out := map[string]string{}
	for _, h := range m.GetHeaders() {
		if h.GetInvertMatch() {
			continue
		}
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_ExactMatch:
			out[strings.ToLower(h.GetName())] = s.ExactMatch
		case *routev3.HeaderMatcher_StringMatch:
			if v, ok := exactString(s.StringMatch); ok {
				out[strings.ToLower(h.GetName())] = v
			}
		}
	}
	return out
}

func exactQuery(m *routev3.RouteMatch) map[string]string {
	out := map[string]string{}
	for _, q := range m.GetQueryParameters() {
		if v, ok := exactString(q.GetStringMatch()); ok {
			out[q.GetName()] = v
		}
	}
	return out
}

func exactString(m *matcherv3.StringMatcher) (string, bool) {
	if e, ok := m.GetMatchPattern().(*matcherv3.StringMatcher_Exact); ok {
		if m.GetIgnoreCase() {
			return strings.ToLower(e.Exact), true
		}
		return e.Exact, true
	}
	return "", false
}
