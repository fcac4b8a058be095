package translate

import (
	"regexp"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"gitxds.dev/gitxds/reconciler/ir"
)

// TestReplacePrefix checks the translation of ReplacePrefixMatch against
// the table of the Gateway API spec (HTTPPathModifier), by applying the
// emitted match and rewrite the way Envoy does: path_separated_prefix and
// prefix_rewrite swap the matched prefix, regex_rewrite is RE2
// GlobalReplace. This is a model of Envoy, not Envoy itself.
func TestReplacePrefix(t *testing.T) {
	for _, tc := range []struct {
		path, prefix, replace, want string
	}{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/foo/bar", "/foo", "/", "/bar"},
		{"/", "/", "/xyz", "/xyz"},
		{"/test", "/", "/xyz/", "/xyz/test"},
		{"/a/b/", "/", "/xyz", "/xyz/a/b/"},
		{"/test", "/", "/", "/test"},
	} {
		m := &ir.Match{PathType: ir.PathPrefix, Path: tc.prefix}
		rm, err := envoyMatch(m)
		if err != nil {
			t.Fatal(err)
		}
		matched, ok := envoyMatched(rm, tc.path)
		if !ok {
			t.Errorf("%s does not match %s", tc.path, tc.prefix)
			continue
		}
		pr, err := replacePrefix(m, tc.replace)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if pr.regex != nil {
			re := regexp.MustCompile(pr.regex.GetPattern().GetRegex())
			got = re.ReplaceAllString(tc.path, re2Substitution(pr.regex.GetSubstitution()))
		} else {
			got = pr.prefix + tc.path[len(matched):]
		}
		if got != tc.want {
			t.Errorf("path %s, prefix %s, replace %q: got %s, want %s", tc.path, tc.prefix, tc.replace, got, tc.want)
		}
	}
}

// envoyMatched returns the part of the path a prefix route matched.
func envoyMatched(rm *routev3.RouteMatch, path string) (string, bool) {
	if p := rm.GetPathSeparatedPrefix(); p != "" {
		if path == p || strings.HasPrefix(path, p+"/") {
			return p, true
		}
		return "", false
	}
	p := rm.GetPrefix()
	return p, strings.HasPrefix(path, p)
}

// re2Substitution turns an RE2 rewrite string (\1, \\) into Go's ($1, \).
func re2Substitution(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$':
			b.WriteString("$$")
		case s[i] == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			b.WriteString("${" + string(s[i+1]) + "}")
			i++
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func TestFullPathRewriteEscapes(t *testing.T) {
	rw := fullPathRewrite(`/a\1$b`)
	re := regexp.MustCompile(rw.GetPattern().GetRegex())
	if got := re.ReplaceAllString("/x/y", re2Substitution(rw.GetSubstitution())); got != `/a\1$b` {
		t.Errorf("got %s", got)
	}
}
