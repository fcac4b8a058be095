package model

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// validHostname returns "" for a valid Gateway API hostname (an RFC 1123
// name, optionally with a leading "*." wildcard label, never an IP), or why
// it is not.
func validHostname(h string) string {
	if _, err := netip.ParseAddr(h); err == nil {
		return "\"" + h + "\" is an IP address; use a hostname"
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return "\"" + h + "\" may only have a wildcard as its whole first label (\"*.example.com\")"
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "\"" + h + "\" is not a valid hostname: " + strings.Join(errs, "; ")
	}
	return ""
}

// validHostname is validHostname(h), remembered for the pass: the routes
// of a team mostly share their hostnames, and the check is a regular
// expression.
func (b *builder) validHostname(h string) string {
	msg, ok := b.hostnames[h]
	if !ok {
		msg = validHostname(h)
		b.hostnames[h] = msg
	}
	return msg
}

// validName returns "" for a valid object name (RFC 1123 subdomain).
func validName(n string) string {
	if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
		return "\"" + n + "\" is not valid: " + strings.Join(errs, "; ")
	}
	return ""
}

// wildcardCovers reports whether wildcard w ("*.example.com") matches host h
// (an exact name or a narrower wildcard): "*.example.com" matches
// "foo.example.com", "a.b.example.com" and "*.b.example.com", not
// "example.com".
func wildcardCovers(w, h string) bool {
	if !strings.HasPrefix(w, "*.") {
		return false
	}
	suffix := w[1:] // ".example.com"
	return strings.HasSuffix(h, suffix) && len(h) > len(suffix)
}

// intersect returns the hostnames a route of routeHosts serves on a listener
// of hostname listenerHost ("" is any), as Gateway API defines it: a route
// without hostnames takes the listener's, a listener without one takes the
// route's, otherwise the narrower of each pair that matches. "*" stands for
// any hostname. The result has no duplicates and keeps the route's order.
func intersect(listenerHost string, routeHosts []string) []string {
	if len(routeHosts) == 0 {
		if listenerHost == "" {
			return []string{"*"}
		}
		return []string{listenerHost}
	}
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, h := range routeHosts {
		switch {
		case listenerHost == "" || h == listenerHost:
			add(h)
		case wildcardCovers(listenerHost, h):
			add(h)
		case wildcardCovers(h, listenerHost):
			add(listenerHost)
		}
	}
	return out
}
