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
		if vb, ok := hb[name]; ok && !va.same(vb) {
			return false
		}
	}
	qa, qb := exactQuery(a), exactQuery(b)
	for name, va := range qa {
		if vb, ok := qb[name]; ok && !va.same(vb) {
			return false
		}
	}
	return true
}

// exact is a required value; fold when it is compared ignoring case.
type exact struct {
	value string
	fold  bool
}

func (e exact) same(o exact) bool {
	if e.fold || o.fold {
		return strings.EqualFold(e.value, o.value)
	}
	return e.value == o.value
}

// pathOf is how a match constrains the path: "exact", "prefix" or ""
// (anything: a regular expression or an unknown specifier).
func pathOf(m *routev3.RouteMatch) (kind, value string) {
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Path:
		return "exact", p.Path
	case *routev3.RouteMatch_Prefix:
		return "prefix", p.Prefix
	case *routev3.RouteMatch_PathSeparatedPrefix:
		return "prefix", p.PathSeparatedPrefix
	}
	return "", ""
}

func foldCase(m *routev3.RouteMatch) bool {
	return m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
}

func pathsOverlap(a, b *routev3.RouteMatch) bool {
	ka, va := pathOf(a)
	kb, vb := pathOf(b)
	if foldCase(a) || foldCase(b) {
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
func exactHeaders(m *routev3.RouteMatch) map[string]exact {
	out := map[string]exact{}
	for _, h := range m.GetHeaders() {
		if h.GetInvertMatch() {
			continue
		}
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_ExactMatch:
			out[strings.ToLower(h.GetName())] = exact{value: s.ExactMatch}
		case *routev3.HeaderMatcher_StringMatch:
			if v, ok := exactString(s.StringMatch); ok {
				out[strings.ToLower(h.GetName())] = v
			}
		}
	}
	return out
}

func exactQuery(m *routev3.RouteMatch) map[string]exact {
	out := map[string]exact{}
	for _, q := range m.GetQueryParameters() {
		if v, ok := exactString(q.GetStringMatch()); ok {
			out[q.GetName()] = v
		}
	}
	return out
}

func exactString(m *matcherv3.StringMatcher) (exact, bool) {
	if e, ok := m.GetMatchPattern().(*matcherv3.StringMatcher_Exact); ok {
		return exact{value: e.Exact, fold: m.GetIgnoreCase()}, true
	}
	return exact{}, false
}
