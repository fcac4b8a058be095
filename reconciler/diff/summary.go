package diff

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxParts is how many items a summary lists before "… and N more".
const maxParts = 6

func joinParts(parts []string) string {
	if len(parts) > maxParts {
		parts = append(parts[:maxParts:maxParts], fmt.Sprintf("… and %d more", len(parts)-maxParts))
	}
	return strings.Join(parts, "; ")
}

// routeSummary says what changed in a route: its match, the traffic shares
// of its clusters, and every other field of its action.
func routeSummary(a, b *routev3.Route) string {
	var parts []string
	if !proto.Equal(a.GetMatch(), b.GetMatch()) {
		parts = append(parts, "match: "+describeMatch(a.GetMatch())+" → "+describeMatch(b.GetMatch()))
	}
	ra, rb := a.GetRoute(), b.GetRoute()
	switch {
	case actionKind(a) != actionKind(b):
		parts = append(parts, "action: "+describeAction(a)+" → "+describeAction(b))
	case ra != nil:
		if s := shareSummary(shares(ra), shares(rb)); s != "" {
			parts = append(parts, "weighted_clusters: "+s)
		}
		x, y := proto.Clone(ra).(*routev3.RouteAction), proto.Clone(rb).(*routev3.RouteAction)
		x.ClusterSpecifier, y.ClusterSpecifier = nil, nil
		parts = append(parts, fieldDiffs(x.ProtoReflect(), y.ProtoReflect(), "route.", 2)...)
	default:
		parts = append(parts, fieldDiffs(a.ProtoReflect(), b.ProtoReflect(), "", 2)...)
		return joinParts(parts)
	}
	x, y := proto.Clone(a).(*routev3.Route), proto.Clone(b).(*routev3.Route)
	x.Match, y.Match, x.Action, y.Action = nil, nil, nil, nil
	parts = append(parts, fieldDiffs(x.ProtoReflect(), y.ProtoReflect(), "", 2)...)
	return joinParts(parts)
}

func actionKind(r *routev3.Route) string {
	switch r.GetAction().(type) {
	case *routev3.Route_Route:
		return "route"
	case *routev3.Route_Redirect:
		return "redirect"
	case *routev3.Route_DirectResponse:
		return "direct_response"
	case nil:
		return "none"
	}
	return fmt.Sprintf("%T", r.GetAction())
}

// shares of the traffic per cluster, in percent.
func shares(a *routev3.RouteAction) map[string]float64 {
	out := map[string]float64{}
	if c := a.GetCluster(); c != "" {
		out[c] = 100
	}
	var total float64
	for _, w := range a.GetWeightedClusters().GetClusters() {
		total += float64(w.GetWeight().GetValue())
	}
	for _, w := range a.GetWeightedClusters().GetClusters() {
		if total > 0 {
			out[w.GetName()] += float64(w.GetWeight().GetValue()) * 100 / total
		}
	}
	return out
}

func shareSummary(a, b map[string]float64) string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var parts []string
	for _, k := range sortedSet(keys) {
		if pct(a[k]) != pct(b[k]) {
			parts = append(parts, fmt.Sprintf("%s %s→%s", k, pct(a[k]), pct(b[k])))
		}
	}
	return strings.Join(parts, ", ")
}

func pct(f float64) string { return strconv.FormatFloat(float64(int64(f*10+0.5))/10, 'f', -1, 64) }

// describeRoute is "match → action".
func describeRoute(r *routev3.Route) string {
	return describeMatch(r.GetMatch()) + " → " + describeAction(r)
}

func describeAction(r *routev3.Route) string {
	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		sh := shares(a.Route)
		keys := make([]string, 0, len(sh))
		for k := range sh {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 1 {
			return keys[0]
		}
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " " + pct(sh[k]) + "%"
		}
		return strings.Join(parts, ", ")
	case *routev3.Route_Redirect:
		rd := a.Redirect
		s := "redirect"
		if rd.GetSchemeRedirect() != "" {
			s += " scheme " + rd.GetSchemeRedirect()
		}
		if rd.GetHostRedirect() != "" {
			s += " host " + rd.GetHostRedirect()
		}
		if rd.GetPortRedirect() != 0 {
			s += fmt.Sprintf(" port %d", rd.GetPortRedirect())
		}
		if rd.GetPathRedirect() != "" {
			s += " path " + rd.GetPathRedirect()
		}
		if rd.GetPrefixRewrite() != "" {
			s += " prefix " + rd.GetPrefixRewrite()
		}
		return s + " " + rd.GetResponseCode().String()
	case *routev3.Route_DirectResponse:
		return fmt.Sprintf("direct response %d", a.DirectResponse.GetStatus())
	}
	return actionKind(r)
}

// describeMatch is a one-line form of a route match.
func describeMatch(m *routev3.RouteMatch) string {
	var parts []string
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		// A Gateway API PathPrefix ending in "/" is an Envoy prefix; any
		// other prefix matches in the middle of a path segment.
		if strings.HasSuffix(p.Prefix, "/") {
			parts = append(parts, "PathPrefix "+p.Prefix)
		} else {
			parts = append(parts, "prefix "+p.Prefix)
		}
	case *routev3.RouteMatch_Path:
		parts = append(parts, "Exact "+p.Path)
	case *routev3.RouteMatch_PathSeparatedPrefix:
		parts = append(parts, "PathPrefix "+p.PathSeparatedPrefix)
	case *routev3.RouteMatch_SafeRegex:
		parts = append(parts, "RegularExpression "+p.SafeRegex.GetRegex())
	case nil:
		parts = append(parts, "any path")
	default:
		parts = append(parts, fmt.Sprintf("%T", p))
	}
	if cs := m.GetCaseSensitive(); cs != nil && !cs.GetValue() {
		parts = append(parts, "case-insensitive")
	}
	for _, h := range m.GetHeaders() {
		parts = append(parts, "header "+describeHeader(h))
	}
	for _, q := range m.GetQueryParameters() {
		v := "present"
		if sm := q.GetStringMatch(); sm != nil {
			v = describeStringMatch(sm)
		}
		parts = append(parts, "query "+q.GetName()+v)
	}
	if m.GetGrpc() != nil {
		parts = append(parts, "grpc")
	}
	return strings.Join(parts, " ")
}

func describeHeader(h *routev3.HeaderMatcher) string {
	not := ""
	if h.GetInvertMatch() {
		not = "!"
	}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		return not + h.GetName() + "=" + s.ExactMatch
	case *routev3.HeaderMatcher_StringMatch:
		return not + h.GetName() + describeStringMatch(s.StringMatch)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		return not + h.GetName() + "~" + s.SafeRegexMatch.GetRegex()
	case *routev3.HeaderMatcher_PresentMatch:
		return not + h.GetName() + " present"
	case *routev3.HeaderMatcher_PrefixMatch:
		return not + h.GetName() + "^=" + s.PrefixMatch
	}
	return not + h.GetName() + " " + fmt.Sprintf("%T", h.GetHeaderMatchSpecifier())
}

func describeStringMatch(m *matcherv3.StringMatcher) string {
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return "=" + p.Exact
	case *matcherv3.StringMatcher_Prefix:
		return "^=" + p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		return "$=" + p.Suffix
	case *matcherv3.StringMatcher_Contains:
		return "*=" + p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		return "~" + p.SafeRegex.GetRegex()
	}
	return " (matcher)"
}

// fieldSummary lists the fields of two messages of one type that differ.
func fieldSummary(a, b proto.Message) string {
	return joinParts(fieldDiffs(a.ProtoReflect(), b.ProtoReflect(), "", 2))
}

// fieldDiffs names the fields that differ: "field: old→new" for scalars,
// durations and wrappers, "field added/removed/changed" for the rest,
// descending depth levels into messages set on both sides.
func fieldDiffs(a, b protoreflect.Message, prefix string, depth int) []string {
	var out []string
	fields := a.Descriptor().Fields()
	for k := 0; k < fields.Len(); k++ {
		f := fields.Get(k)
		ha, hb := a.Has(f), b.Has(f)
		if !ha && !hb {
			continue
		}
		va, vb := a.Get(f), b.Get(f)
		if ha && hb && valueEqual(f, va, vb) {
			continue
		}
		name := prefix + string(f.Name())
		switch {
		case f.IsList():
			out = append(out, fmt.Sprintf("%s changed (%d→%d item(s))", name, va.List().Len(), vb.List().Len()))
		case f.IsMap():
			out = append(out, fmt.Sprintf("%s changed (%d→%d item(s))", name, va.Map().Len(), vb.Map().Len()))
		case f.Message() != nil:
			if s, ok := short(f.Message(), va.Message(), ha); ok {
				t, _ := short(f.Message(), vb.Message(), hb)
				out = append(out, name+": "+s+"→"+t)
				continue
			}
			switch {
			case !ha:
				out = append(out, name+" added")
			case !hb:
				out = append(out, name+" removed")
			case depth > 0:
				sub := fieldDiffs(va.Message(), vb.Message(), name+".", depth-1)
				if len(sub) == 0 {
					sub = []string{name + " changed"}
				}
				out = append(out, sub...)
			default:
				out = append(out, name+" changed")
			}
		default:
			out = append(out, name+": "+scalar(f, va)+"→"+scalar(f, vb))
		}
	}
	return out
}

// short formats a well-known message (durations, wrappers) in a few
// characters; ok is false for any other message.
func short(md protoreflect.MessageDescriptor, m protoreflect.Message, has bool) (string, bool) {
	full := string(md.FullName())
	switch {
	case full == "google.protobuf.Duration":
		if !has {
			return "unset", true
		}
		sec := m.Get(md.Fields().ByName("seconds")).Int()
		ns := m.Get(md.Fields().ByName("nanos")).Int()
		return (time.Duration(sec)*time.Second + time.Duration(ns)).String(), true
	case strings.HasPrefix(full, "google.protobuf.") && strings.HasSuffix(full, "Value") && md.Fields().Len() == 1:
		if !has {
			return "unset", true
		}
		f := md.Fields().Get(0)
		return scalar(f, m.Get(f)), true
	}
	return "", false
}

func scalar(f protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch f.Kind() {
	case protoreflect.EnumKind:
		if e := f.Enum().Values().ByNumber(v.Enum()); e != nil {
			return string(e.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.StringKind:
		return strconv.Quote(v.String())
	case protoreflect.BytesKind:
		return fmt.Sprintf("%d bytes", len(v.Bytes()))
	}
	return fmt.Sprint(v.Interface())
}

func valueEqual(f protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	switch {
	case f.IsList():
		la, lb := a.List(), b.List()
		if la.Len() != lb.Len() {
			return false
		}
		for i := 0; i < la.Len(); i++ {
			if !singleEqual(f, la.Get(i), lb.Get(i)) {
				return false
			}
		}
		return true
	case f.IsMap():
		ma, mb := a.Map(), b.Map()
		if ma.Len() != mb.Len() {
			return false
		}
		eq := true
		ma.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			w := mb.Get(k)
			eq = mb.Has(k) && singleEqual(f.MapValue(), v, w)
			return eq
		})
		return eq
	}
	return singleEqual(f, a, b)
}

func singleEqual(f protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	switch {
	case f.Message() != nil:
		return proto.Equal(a.Message().Interface(), b.Message().Interface())
	case f.Kind() == protoreflect.BytesKind:
		return bytes.Equal(a.Bytes(), b.Bytes())
	}
	return a.Interface() == b.Interface()
}
