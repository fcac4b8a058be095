package model

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// maxMaglevTableSize is the largest Maglev table Envoy takes: the
// protoc-gen-validate rule lte: 5000011 of Cluster.MaglevLbConfig.table_size
// (api/envoy/config/cluster/v3/cluster.proto).
const maxMaglevTableSize = 5000011

// loadBalancer validates a policy's loadBalancer. It returns the IR load
// balancer, what gRPC nodes get differently (for the policy's status), or
// why the policy is invalid.
func loadBalancer(lb *v1alpha1.LoadBalancer) (*ir.LoadBalancer, string, string) {
	out := &ir.LoadBalancer{}
	grpcNote := ""
	switch lb.Type {
	case v1alpha1.RoundRobinLoadBalancer:
		out.Type = ir.LBRoundRobin
	case v1alpha1.LeastRequestLoadBalancer:
		out.Type = ir.LBLeastRequest
	case v1alpha1.RandomLoadBalancer:
		out.Type = ir.LBRandom
		grpcNote = "gRPC has no Random load balancing: gRPC nodes use round robin"
	case v1alpha1.ConsistentHashLoadBalancer:
		out.Type = ir.LBConsistentHash
	default:
		return nil, "", fmt.Sprintf("loadBalancer.type %q is not one of RoundRobin, LeastRequest, Random, ConsistentHash", lb.Type)
	}
	if (lb.ConsistentHash != nil) != (out.Type == ir.LBConsistentHash) {
		return nil, "", "loadBalancer.consistentHash must be set exactly when loadBalancer.type is ConsistentHash"
	}
	if s := lb.SlowStart; s != nil {
		if out.Type != ir.LBRoundRobin && out.Type != ir.LBLeastRequest {
			return nil, "", "loadBalancer.slowStart is only supported with RoundRobin and LeastRequest"
		}
		if s.Window == nil || s.Window.Duration <= 0 {
			return nil, "", "loadBalancer.slowStart.window must be positive"
		}
		out.SlowStartWindow = s.Window.Duration
		grpcNote = "gRPC has no slow start: gRPC nodes send new endpoints their full share at once"
	}
	if ch := lb.ConsistentHash; ch != nil {
		h, note, msg := consistentHash(ch)
		if msg != "" {
			return nil, "", msg
		}
		out.Hash, grpcNote = h, note
		if ch.TableSize != nil {
			n := *ch.TableSize
			// Envoy refuses a table size that is not prime when it builds
			// the cluster (source/extensions/load_balancing_policies/maglev/
			// maglev_lb.cc, MaglevLoadBalancer's constructor: "The table size
			// of maglev must be prime number").
			if n < 2 || n > maxMaglevTableSize || !xdsres.MaglevTableSize(n) {
				return nil, "", fmt.Sprintf("loadBalancer.consistentHash.tableSize %d must be a prime number up to %d (Envoy refuses others)", n, maxMaglevTableSize)
			}
			out.TableSize = n
		}
	}
	return out, grpcNote, ""
}

func consistentHash(ch *v1alpha1.ConsistentHash) (*ir.HashPolicy, string, string) {
	if (ch.Header != nil) != (ch.Type == v1alpha1.HeaderHash) {
		return nil, "", "loadBalancer.consistentHash.header must be set exactly when consistentHash.type is Header"
	}
	if (ch.Cookie != nil) != (ch.Type == v1alpha1.CookieHash) {
		return nil, "", "loadBalancer.consistentHash.cookie must be set exactly when consistentHash.type is Cookie"
	}
	switch ch.Type {
	case v1alpha1.HeaderHash:
		name := strings.ToLower(ch.Header.Name)
		if msg := validHeaderName(name); msg != "" {
			return nil, "", "loadBalancer.consistentHash.header.name: " + msg
		}
		return &ir.HashPolicy{Header: name}, "", ""
	case v1alpha1.SourceIPHash:
		return &ir.HashPolicy{SourceIP: true}, "gRPC cannot hash on the source IP (gRFC A42 hashes on headers only): gRPC nodes use round robin", ""
	case v1alpha1.CookieHash:
		c := ch.Cookie
		if !isToken(c.Name) {
			return nil, "", fmt.Sprintf("loadBalancer.consistentHash.cookie.name %q is not a cookie name", c.Name)
		}
		out := &ir.HashCookie{Name: c.Name}
		if c.TTL != nil {
			if c.TTL.Duration < time.Second || c.TTL.Duration%time.Second != 0 {
				return nil, "", "loadBalancer.consistentHash.cookie.ttl must be whole seconds, at least 1s (the cookie's Max-Age)"
			}
			out.TTL = c.TTL.Duration
		}
		for k, v := range c.Attributes {
			if !isToken(k) {
				return nil, "", fmt.Sprintf("loadBalancer.consistentHash.cookie.attributes: %q is not an attribute name", k)
			}
			out.Attributes = append(out.Attributes, ir.CookieAttribute{Name: k, Value: v})
		}
		sort.Slice(out.Attributes, func(i, j int) bool { return out.Attributes[i].Name < out.Attributes[j].Name })
		return &ir.HashPolicy{Cookie: out}, "gRPC cannot hash on a cookie (gRFC A42 hashes on headers only): gRPC nodes use round robin", ""
	}
	return nil, "", fmt.Sprintf("loadBalancer.consistentHash.type %q is not one of SourceIP, Header, Cookie", ch.Type)
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), what
// a cookie name and an attribute name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// routeHashes gives every IR route the hash policy of the first of its
// backends whose cluster balances by consistent hash.
func (b *builder) routeHashes() {
	for _, r := range b.rts {
		for _, m := range r.matches {
			for _, wb := range m.ir.Backends {
				c := b.clusters[wb.Cluster]
				if c == nil || c.LoadBalancer == nil || c.LoadBalancer.Hash == nil {
					continue
				}
				h := *c.LoadBalancer.Hash
				m.ir.Hash = &h
				break
			}
		}
	}
}
