package xds

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// NodeIdentity binds what a node claims to what the platform knows of it.
//
// With a Pattern, a stream must come with a verified client certificate
// (mutual TLS) one of whose SANs (URI or DNS) matches Pattern for the node
// id the stream claims: "{id}" in Pattern stands for the node id and
// "{<label>}" for the value of a node label, each one path segment ("/"
// excluded), so "spiffe://example.org/rollout-group/{rollout-group}/node/{id}"
// accepts node id "edge-1" from a certificate whose URI SAN is
// "spiffe://example.org/rollout-group/canary/node/edge-1", and gives it
// the label rollout-group=canary. A second stream for a node id already
// connected with another certificate identity is refused.
//
// Labels pins labels by node id (a platform map). When the Pattern names a
// label, or Labels is set, a node's labels are those of its certificate
// and of the map only: what the node declares in Node.metadata is ignored,
// so a client cannot join a rollout stage it does not belong to.
type NodeIdentity struct {
	Pattern string
	Labels  map[string]map[string]string
}

// identityMatcher is a compiled NodeIdentity.
type identityMatcher struct {
	pattern string
	re      *regexp.Regexp // nil without a Pattern
	groups  []string       // "id" and the label names, in pattern order
	labels  []string       // label names of the pattern
	pins    map[string]map[string]string
}

var placeholder = regexp.MustCompile(`\{([A-Za-z0-9._/-]+)\}`)

// Validate reports whether the pattern compiles: it has one {id}.
func (ni *NodeIdentity) Validate() error {
	_, err := compileIdentity(ni)
	return err
}

func compileIdentity(ni *NodeIdentity) (*identityMatcher, error) {
	if ni == nil {
		return nil, nil
	}
	m := &identityMatcher{pattern: ni.Pattern, pins: ni.Labels}
	if ni.Pattern == "" {
		return m, nil
	}
	var re strings.Builder
	re.WriteString("^")
	last, hasID := 0, false
	for _, loc := range placeholder.FindAllStringSubmatchIndex(ni.Pattern, -1) {
		re.WriteString(regexp.QuoteMeta(ni.Pattern[last:loc[0]]))
		name := ni.Pattern[loc[2]:loc[3]]
		m.groups = append(m.groups, name)
		if name == "id" {
			if hasID {
				return nil, fmt.Errorf("xds: node identity pattern %q: {id} more than once", ni.Pattern)
			}
			hasID = true
		} else {
			m.labels = append(m.labels, name)
		}
		re.WriteString("([^/]+)")
		last = loc[1]
	}
	re.WriteString(regexp.QuoteMeta(ni.Pattern[last:]))
	re.WriteString("$")
	if !hasID {
		return nil, fmt.Errorf("xds: node identity pattern %q has no {id}", ni.Pattern)
	}
	m.re = regexp.MustCompile(re.String())
	return m, nil
}

// pinned reports whether labels come from the certificate and the map only.
func (m *identityMatcher) pinned() bool { return len(m.labels) > 0 || m.pins != nil }

// check returns the certificate identity (the matching SAN) of a stream
// claiming node id, and the node's pinned labels; an error says why the
// stream is refused.
func (m *identityMatcher) check(id string, peer *peerIdentity) (ident string, labels map[string]string, err error) {
	if m.re != nil {
		if peer == nil || len(peer.sans) == 0 {
			return "", nil, fmt.Errorf("node %q: no verified client certificate with a URI or DNS SAN; the node id must match it (pattern %q)", id, m.pattern)
		}
		for _, san := range peer.sans {
			sub := m.re.FindStringSubmatch(san)
			if sub == nil {
				continue
			}
			got := map[string]string{}
			gid := ""
			for i, g := range m.groups {
				if g == "id" {
					gid = sub[i+1]
				} else {
					got[g] = sub[i+1]
				}
			}
			if gid != id {
				continue
			}
			ident, labels = san, got
			break
		}
		if ident == "" {
			return "", nil, fmt.Errorf("node id %q does not match the client certificate (SANs %s) by pattern %q", id, strings.Join(peer.sans, ", "), m.pattern)
		}
	}
	if !m.pinned() {
		return ident, nil, nil
	}
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, m.pins[id])
	return ident, labels, nil
}

// peerIdentity is what the TLS handshake of a stream proved.
type peerIdentity struct {
	sans []string // URI and DNS SANs of the verified client certificate
}

// peerOf reads the verified client certificate of a stream's context.
func peerOf(ctx context.Context) *peerIdentity {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return &peerIdentity{sans: sansOf(ti.State.VerifiedChains[0][0])}
}

func sansOf(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.DNSNames...)
	sort.Strings(out)
	return out
}
