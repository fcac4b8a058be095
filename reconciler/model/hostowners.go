package model

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationHostnames, on a Namespace of platform/, lists the hostnames
// the namespace owns, comma-separated, in Gateway API hostname syntax
// ("payments.example.com, *.pay.example.com"). Only routes of an owning
// namespace are attached for an owned hostname; hostnames nobody owns are
// first come, first served.
const AnnotationHostnames = "gitxds.dev/hostnames"

// ReasonHostnameNotOwned: a route claims, exactly or through a wildcard
// that covers it, a hostname another namespace owns. The route is not
// attached for that hostname (Accepted=False when nothing is left of it,
// PartiallyInvalid=True otherwise), and the message names the owner.
const ReasonHostnameNotOwned = "HostnameNotOwned"

// ReasonConflicted: a declaration conflicts with an earlier one and is
// ignored (a hostname owned twice).
const ReasonConflicted = "Conflicted"

// hostOwner is one owned hostname pattern.
type hostOwner struct {
	pattern   string // "payments.example.com" or "*.pay.example.com"
	namespace string
}

// indexHostOwners reads the annotation gitxds.dev/hostnames of the
// Namespaces of platform/ (only platform/ may define Namespaces). A
// hostname owned by two namespaces goes to the first by name.
//
// Sets PartiallyInvalid=True on a Namespace whose annotation has an invalid
// hostname (reason Invalid, the entry is ignored) or a hostname another
// Namespace owns already (reason Conflicted).
func (b *builder) indexHostOwners(nss []*object) {
	sort.Slice(nss, func(i, j int) bool { return nss[i].src.Name < nss[j].src.Name })
	owner := map[string]string{}
	for _, o := range nss {
		ns := o.typed.(*Namespace)
		v, ok := ns.Annotations[AnnotationHostnames]
		if !ok {
			continue
		}
		var bad, taken []string
		for _, h := range strings.Split(v, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" {
				continue
			}
			if msg := b.validHostname(h); msg != "" || h == "*" {
				if h == "*" {
					msg = `"*" would own every hostname`
				}
				bad = append(bad, msg)
				continue
			}
			if prev, ok := owner[h]; ok {
				if prev != ns.Name {
					taken = append(taken, fmt.Sprintf("%s is owned by namespace %q already", h, prev))
				}
				continue
			}
			owner[h] = ns.Name
			b.owners = append(b.owners, hostOwner{pattern: h, namespace: ns.Name})
		}
		var msgs []string
		reason := ReasonConflicted
		if len(bad) > 0 {
			reason = ReasonInvalid
			msgs = append(msgs, "these entries are ignored: "+strings.Join(bad, "; "))
		}
		if len(taken) > 0 {
			msgs = append(msgs, strings.Join(taken, "; ")+" (the first Namespace by name keeps a hostname)")
		}
		if len(msgs) > 0 {
			o.set(CondPartiallyInvalid, metav1.ConditionTrue, reason, o.msg("annotation %s: %s", AnnotationHostnames, strings.Join(msgs, "; ")))
		}
	}
	// Most specific first: exact names, then wildcards, longest first.
	sort.Slice(b.owners, func(i, j int) bool { return hostLess(b.owners[i].pattern, b.owners[j].pattern) })
}

// ownerOfHost returns the owner of hostname h (an exact name or a
// wildcard): the most specific owned pattern that is h or covers it. nil
// when nobody owns h.
func (b *builder) ownerOfHost(h string) *hostOwner {
	for i := range b.owners {
		if p := b.owners[i].pattern; p == h || wildcardCovers(p, h) {
			return &b.owners[i]
		}
	}
	return nil
}

// ownedWithin returns the owned patterns that hostname h covers strictly
// ("*.example.com" covers "payments.example.com"), "*" covering all.
func (b *builder) ownedWithin(h string) []hostOwner {
	var out []hostOwner
	for _, o := range b.owners {
		if o.pattern != h && covers(h, o.pattern) {
			out = append(out, o)
		}
	}
	return out
}

// mayServe reports whether a route of namespace ns may serve requests for
// hostname h: nobody owns h, or ns does.
func (b *builder) mayServe(ns, h string) bool {
	o := b.ownerOfHost(h)
	return o == nil || o.namespace == ns
}

// ownedHosts filters the hostnames a route would serve on a listener: a
// hostname another namespace owns is left out. It returns the hostnames
// kept, and what the route's own spec.hostnames claim of other owners
// (exactly or through a wildcard), for its status.
func (b *builder) ownedHosts(r *route, hosts []string) (keep []string, problems []string) {
	if len(b.owners) == 0 {
		return hosts, nil
	}
	ns := r.obj.src.Namespace
	for _, h := range hosts {
		if o := b.ownerOfHost(h); o != nil && o.namespace != ns {
			problems = append(problems, ownedMsg(h, *o))
			continue
		}
		keep = append(keep, h)
		if len(r.hostnames) == 0 {
			continue // the listener's hostname, not a claim of the route's
		}
		for _, o := range b.ownedWithin(h) {
			if o.namespace != ns && b.ownerOfHost(o.pattern).namespace == o.namespace {
				problems = append(problems, fmt.Sprintf("%s is not served for %s, which namespace %q owns (annotation %s of Namespace %s)", h, o.pattern, o.namespace, AnnotationHostnames, o.namespace))
			}
		}
	}
	return keep, problems
}

func ownedMsg(h string, o hostOwner) string {
	if o.pattern == h {
		return fmt.Sprintf("hostname %s is owned by namespace %q (annotation %s of Namespace %s)", h, o.namespace, AnnotationHostnames, o.namespace)
	}
	return fmt.Sprintf("hostname %s is owned by namespace %q through %s (annotation %s of Namespace %s)", h, o.namespace, o.pattern, AnnotationHostnames, o.namespace)
}
