package model

import (
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strings"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// ReasonAddressNotAllowed: a Backend endpoint is denied by a rule of the
// backend address policy (built in, or of a BackendAddressPolicy).
const ReasonAddressNotAllowed = "AddressNotAllowed"

// addressRule is one rule of the backend address policy.
type addressRule struct {
	allow  bool
	prefix netip.Prefix // for CIDR rules
	glob   string       // for FQDN rules
	// name says where the rule comes from, for status messages.
	name string
}

// builtinDeny are denied unless an allow rule more specific than them
// matches: addresses no Backend of a shared gateway should reach (cloud
// metadata services on link-local, "any" addresses, multicast, broadcast).
var builtinDeny = []struct{ name, cidr string }{
	{"link-local", "169.254.0.0/16"},
	{"link-local", "fe80::/10"},
	{"unspecified", "0.0.0.0/32"},
	{"unspecified", "::/128"},
	{"multicast", "224.0.0.0/4"},
	{"multicast", "ff00::/8"},
	{"broadcast", "255.255.255.255/32"},
}

// addressPolicy is the union of the built-in rules and every accepted
// BackendAddressPolicy.
type addressPolicy struct {
	cidrs []addressRule
	fqdns []addressRule
}

func newAddressPolicy() *addressPolicy {
	p := &addressPolicy{}
	for _, r := range builtinDeny {
		p.cidrs = append(p.cidrs, addressRule{prefix: netip.MustParsePrefix(r.cidr),
			name: fmt.Sprintf("the built-in rule %s (%s)", r.name, r.cidr)})
	}
	return p
}

// indexAddressPolicies validates the BackendAddressPolicies (only
// platform/ may define them) and adds their rules to b.addrPolicy.
//
// Sets Accepted=False reason Invalid on a policy with a CIDR or a glob that
// does not parse; nothing of it applies then.
func (b *builder) indexAddressPolicies(objs []*object) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].src.Name < objs[j].src.Name })
	for _, o := range objs {
		t := o.typed.(*v1alpha1.BackendAddressPolicy)
		var rules addressPolicy
		var bad []string
		add := func(field string, allow bool, rs *v1alpha1.AddressRules) {
			if rs == nil {
				return
			}
			for i, c := range rs.CIDRs {
				pf, err := netip.ParsePrefix(strings.TrimSpace(c))
				if err != nil {
					if a, aerr := netip.ParseAddr(strings.TrimSpace(c)); aerr == nil {
						pf, err = netip.PrefixFrom(a, a.BitLen()), nil
					}
				}
				if err != nil {
					bad = append(bad, fmt.Sprintf("spec.%s.cidrs[%d] %q is not a CIDR", field, i, c))
					continue
				}
				pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-unmapBits(pf.Addr())).Masked()
				rules.cidrs = append(rules.cidrs, addressRule{allow: allow, prefix: pf,
					name: fmt.Sprintf("%s spec.%s.cidrs[%d] (%s)", o.src.ID(), field, i, pf)})
			}
			for i, g := range rs.FQDNs {
				g = strings.ToLower(strings.TrimSpace(g))
				if _, err := path.Match(g, ""); err != nil || g == "" || strings.Contains(g, "/") {
					bad = append(bad, fmt.Sprintf("spec.%s.fqdns[%d] %q is not a hostname glob", field, i, g))
					continue
				}
				rules.fqdns = append(rules.fqdns, addressRule{allow: allow, glob: g,
					name: fmt.Sprintf("%s spec.%s.fqdns[%d] (%s)", o.src.ID(), field, i, g)})
			}
		}
		add("allow", true, t.Spec.Allow)
		add("deny", false, t.Spec.Deny)
		if len(bad) > 0 {
			o.reject(ReasonInvalid, "%s; the policy does not apply until it is fixed", strings.Join(bad, "; "))
			continue
		}
		b.addrPolicy.cidrs = append(b.addrPolicy.cidrs, rules.cidrs...)
		b.addrPolicy.fqdns = append(b.addrPolicy.fqdns, rules.fqdns...)
	}
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 address loses when
// unmapped.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// checkIP returns "" if the policy allows address a, or the rule that
// denies it: the most specific matching rule decides, deny winning a tie.
func (p *addressPolicy) checkIP(a netip.Addr) string {
	a = a.Unmap()
	var best *addressRule
	for i := range p.cidrs {
		r := &p.cidrs[i]
		if !r.prefix.Contains(a) {
			continue
		}
		if best == nil || r.prefix.Bits() > best.prefix.Bits() || (r.prefix.Bits() == best.prefix.Bits() && !r.allow) {
			best = r
		}
	}
	if best == nil || best.allow {
		return ""
	}
	return best.name
}

// checkFQDN returns "" if the policy allows hostname h, or the rule that
// denies it. An exact pattern is more specific than a glob, a longer glob
// more specific than a shorter one; deny wins a tie. A hostname that is an
// IP address is checked as one; "localhost" and names under it as the
// loopback addresses.
func (p *addressPolicy) checkFQDN(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return p.checkIP(a)
	}
	var best *addressRule
	spec := func(r *addressRule) int {
		if !strings.ContainsAny(r.glob, "*?[") {
			return 1 << 20
		}
		return len(r.glob)
	}
	for i := range p.fqdns {
		r := &p.fqdns[i]
		if ok, _ := path.Match(r.glob, h); !ok {
			continue
		}
		if best == nil || spec(r) > spec(best) || (spec(r) == spec(best) && !r.allow) {
			best = r
		}
	}
	if best != nil {
		if best.allow {
			return ""
		}
		return best.name
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		for _, a := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
			if rule := p.checkIP(a); rule != "" {
				return rule + ", as " + h + " is a loopback name"
			}
		}
	}
	return ""
}
