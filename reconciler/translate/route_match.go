package translate

import (
	"fmt"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"gitxds.dev/gitxds/reconciler/ir"
)

// headerMethod is the pseudo-header a method match is expressed with.
const headerMethod = ":method"

// Constant patterns of path rewrites, checked to be RE2 when the package
// is loaded.
var (
	// rootPrefixPattern captures the whole path but a lone "/".
	rootPrefixPattern = mustRE2(`^/$|^(/.+)$`)
	// fullPathPattern matches any path.
	fullPathPattern = mustRE2(`^/.*$`)
)

func mustRE2(re string) string {
	regexp.MustCompile(re)
	return re
}

// elementPrefix is the prefix of a PathPrefix match with Gateway API's
// path-element semantics, without its trailing slashes: "/foo/" and "/foo"
// both match "/foo", "/foo/" and "/foo/bar", and not "/foobar". It is "" for
// the prefix "/", which matches every path.
func elementPrefix(path string) string {
	return strings.TrimRight(path, "/")
}

// envoyMatch is the match of a route for Envoy. PathPrefix is a
// path_separated_prefix (path-element semantics), a plain prefix for gRPC
// service matches ("/pkg.Service/").
func envoyMatch(m *ir.Match) (*routev3.RouteMatch, error) {
	rm := &routev3.RouteMatch{}
	switch m.PathType {
	case ir.PathExact:
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case ir.PathPrefix, "":
		switch p := elementPrefix(m.Path); {
		case m.GRPC && m.Path != "":
			rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Path}
		case p == "":
			rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
		default:
			rm.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: p}
		}
	case ir.PathRegex:
		if err := compileRegex(m.Path); err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regexMatcher(m.Path)}
	default:
		return nil, fmt.Errorf("unknown path match type %q", m.PathType)
	}
	if m.Method != "" {
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{
			Name:                 headerMethod,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(m.Method)},
		})
	}
	hs, err := headerMatchers(m.Headers)
	if err != nil {
		return nil, err
	}
	rm.Headers = append(rm.Headers, hs...)
	for _, q := range m.Query {
		sm, err := stringMatcher(q)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q: %w", q.Name, err)
		}
		rm.QueryParameters = append(rm.QueryParameters, &routev3.QueryParameterMatcher{
			Name:                         q.Name,
			QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm},
		})
	}
	return rm, nil
}

// headerMatchers with lower-case names: header names are case-insensitive,
// Envoy matches lower-case names and gRPC metadata keys are lower case.
func headerMatchers(in []ir.StringMatch) ([]*routev3.HeaderMatcher, error) {
	var out []*routev3.HeaderMatcher
	for _, h := range in {
		sm, err := stringMatcher(h)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.Name, err)
		}
		out = append(out, &routev3.HeaderMatcher{
			Name:                 strings.ToLower(h.Name),
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm},
		})
	}
	return out, nil
}

func stringMatcher(s ir.StringMatch) (*matcherv3.StringMatcher, error) {
	switch s.Type {
	case ir.MatchExact, "":
		return exact(s.Value), nil
	case ir.MatchRegex:
		if err := compileRegex(s.Value); err != nil {
			return nil, err
		}
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regexMatcher(s.Value)}}, nil
	default:
		return nil, fmt.Errorf("unknown match type %q", s.Type)
	}
}

func exact(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

// prefixReplacement is how the matched prefix of a route is replaced with
// r (Gateway API ReplacePrefixMatch): either a prefix_rewrite or, to strip
// the prefix entirely, a regex_rewrite. Both are valid in a RouteAction and
// in a RedirectAction.
type prefixReplacement struct {
	prefix string
	regex  *matcherv3.RegexMatchAndSubstitute
}

func replacePrefix(m *ir.Match, r string) (prefixReplacement, error) {
	switch m.PathType {
	case ir.PathExact:
		// The matched "prefix" is the whole path.
		if r == "" {
			r = "/"
		}
		return prefixReplacement{prefix: r}, nil
	case ir.PathPrefix, "":
		if m.GRPC && m.Path != "" {
			return prefixReplacement{prefix: r}, nil
		}
		p, rr := elementPrefix(m.Path), elementPrefix(r)
		switch {
		case p == "" && rr == "":
			return prefixReplacement{prefix: "/"}, nil
		case p == "":
			// Prefix "/": put rr in front of the path, "/" -> rr and
			// "/x" -> rr+"/x" (a prefix_rewrite of rr+"/" would turn "/"
			// into rr+"/").
			return prefixReplacement{regex: &matcherv3.RegexMatchAndSubstitute{
				Pattern:      regexMatcher(rootPrefixPattern),
				Substitution: escapeSubstitution(rr) + `\1`,
			}}, nil
		case rr == "":
			// "/foo" -> "/", "/foo/" -> "/", "/foo/bar" -> "/bar": a
			// prefix_rewrite of "/" would give "//bar".
			pattern := "^" + regexp.QuoteMeta(p) + "/*"
			if err := compileRegex(pattern); err != nil {
				return prefixReplacement{}, err
			}
			return prefixReplacement{regex: &matcherv3.RegexMatchAndSubstitute{
				Pattern:      regexMatcher(pattern),
				Substitution: "/",
			}}, nil
		default:
			// path_separated_prefix swaps exactly the matched elements:
			// "/foo" -> rr, "/foo/bar" -> rr+"/bar".
			return prefixReplacement{prefix: rr}, nil
		}
	default:
		return prefixReplacement{}, fmt.Errorf("a prefix replacement needs a PathPrefix or Exact match, not %q", m.PathType)
	}
}

// fullPathRewrite replaces the whole path (the query string is kept):
// Envoy's regex_rewrite applies to the path without its query. path_rewrite
// is not used since it would interpret "%" as a format specifier.
func fullPathRewrite(path string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{
		Pattern:      regexMatcher(fullPathPattern),
		Substitution: escapeSubstitution(path),
	}
}

// escapeSubstitution quotes a literal for an RE2 substitution, in which a
// backslash is an escape.
func escapeSubstitution(s string) string {
	return strings.ReplaceAll(s, `\`, `\\`)
}
