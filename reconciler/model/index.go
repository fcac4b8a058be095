package model

import (
	"fmt"
	"net/netip"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// backend is a decoded, validated Backend.
type backend struct {
	obj       *object
	endpoints []ir.Endpoint // sorted
	dns       bool
}

// grant is one accepted ReferenceGrant.
type grant struct {
	namespace string
	spec      gwv1b1.ReferenceGrantSpec
}

// index collects the objects others refer to: Namespace labels, the
// RolloutPolicy, Backends and ReferenceGrants.
//
// Sets Accepted=False with reason Invalid on a Backend with a bad endpoint,
// and on every RolloutPolicy but one when there are several.
func (b *builder) index() {
	var rollouts, nss, addrPolicies []*object
	var backends []*object
	for _, o := range b.live() {
		switch t := o.typed.(type) {
		case *Namespace:
			nss = append(nss, o)
			labels := map[string]string{}
			for k, v := range t.Labels {
				labels[k] = v
			}
			b.nsLabels[t.Name] = labels
		case *v1alpha1.RolloutPolicy:
			rollouts = append(rollouts, o)
		case *v1alpha1.Backend:
			backends = append(backends, o)
		case *v1alpha1.BackendAddressPolicy:
			addrPolicies = append(addrPolicies, o)
		case *gwv1b1.ReferenceGrant:
			b.grants = append(b.grants, &grant{namespace: t.Namespace, spec: t.Spec})
		}
	}
	b.indexHostOwners(nss)
	b.indexAddressPolicies(addrPolicies)
	for _, o := range backends {
		b.indexBackend(o, o.typed.(*v1alpha1.Backend))
	}
	sort.Slice(rollouts, func(i, j int) bool { return rollouts[i].src.Name < rollouts[j].src.Name })
	for _, o := range rollouts {
		p := o.typed.(*v1alpha1.RolloutPolicy)
		if msg := validateRollout(p); msg != "" {
			o.reject(ReasonInvalid, "%s", msg)
			continue
		}
		if b.rollout != nil {
			o.reject(ReasonInvalid, "only one RolloutPolicy may exist per environment; RolloutPolicy %s (first by name) is used", b.rollout.Name)
			continue
		}
		b.rollout, b.rolloutObj = p, o
	}
}

func (b *builder) indexBackend(o *object, t *v1alpha1.Backend) {
	if len(t.Spec.Endpoints) == 0 {
		o.reject(ReasonInvalid, "spec.endpoints is empty; list at least one ip or fqdn endpoint")
		return
	}
	be := &backend{obj: o}
	for i, e := range t.Spec.Endpoints {
		switch {
		case (e.IP == nil) == (e.FQDN == nil):
			o.reject(ReasonInvalid, "spec.endpoints[%d] must set exactly one of ip and fqdn", i)
			return
		case e.IP != nil:
			addr, err := netip.ParseAddr(e.IP.Address)
			if err != nil || addr.Zone() != "" {
				o.reject(ReasonInvalid, "spec.endpoints[%d].ip.address %q is not an IP address", i, e.IP.Address)
				return
			}
			if !validPort(e.IP.Port) {
				o.reject(ReasonInvalid, "spec.endpoints[%d].ip.port %d must be 1..65535", i, e.IP.Port)
				return
			}
			if rule := b.addrPolicy.checkIP(addr); rule != "" {
				b.refuseBackend(o, fmt.Sprintf("spec.endpoints[%d].ip.address %s is denied by %s", i, addr, rule))
				return
			}
			be.endpoints = append(be.endpoints, ir.Endpoint{Address: addr.String(), Port: uint32(e.IP.Port)})
		default:
			if errs := validation.IsDNS1123Subdomain(e.FQDN.Hostname); len(errs) > 0 {
				o.reject(ReasonInvalid, "spec.endpoints[%d].fqdn.hostname %q is not a valid hostname", i, e.FQDN.Hostname)
				return
			}
			if !validPort(e.FQDN.Port) {
				o.reject(ReasonInvalid, "spec.endpoints[%d].fqdn.port %d must be 1..65535", i, e.FQDN.Port)
				return
			}
			if rule := b.addrPolicy.checkFQDN(e.FQDN.Hostname); rule != "" {
				b.refuseBackend(o, fmt.Sprintf("spec.endpoints[%d].fqdn.hostname %s is denied by %s", i, e.FQDN.Hostname, rule))
				return
			}
			be.dns = true
			be.endpoints = append(be.endpoints, ir.Endpoint{Address: e.FQDN.Hostname, Port: uint32(e.FQDN.Port)})
		}
	}
	sortEndpoints(be.endpoints)
	b.backends[o.src.Namespace+"/"+o.src.Name] = be
}

// refuseBackend rejects a Backend the address policy denies, and
// remembers why for the routes that refer to it.
func (b *builder) refuseBackend(o *object, why string) {
	o.reject(ReasonAddressNotAllowed, "%s; ask the platform team (BackendAddressPolicy of platform/)", why)
	b.refused[o.src.Namespace+"/"+o.src.Name] = why
}

func validPort(p int32) bool { return p >= 1 && p <= 65535 }

func sortEndpoints(eps []ir.Endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].Address != eps[j].Address {
			return eps[i].Address < eps[j].Address
		}
		return eps[i].Port < eps[j].Port
	})
}

// permitted reports whether an object of fromGroup/fromKind in fromNS may
// refer to toGroup/toKind toNS/toName: always within a namespace, across
// namespaces only with a ReferenceGrant in toNS.
func (b *builder) permitted(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	if fromNS == toNS {
		return true
	}
	for _, g := range b.grants {
		if g.namespace != toNS {
			continue
		}
		from := false
		for _, f := range g.spec.From {
			if string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, t := range g.spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || string(*t.Name) == toName) {
				return true
			}
		}
	}
	return false
}
