package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// State-of-the-world watches: only what changed, bytes shared.
//
// The watcher answers every sotw watch itself (go-control-plane's
// SnapshotCache still serves delta), for two reasons.
//
// Only what changed. The xDS protocol lets a state-of-the-world response of
// a type other than Listener and Cluster carry only some of the subscribed
// resources: a client keeps those it is not sent ("Grouping resources into
// responses" in the xDS protocol; Envoy and gRPC-Go both do). The
// SnapshotCache always sends every subscribed resource, so one changed
// route configuration among 200 re-sends all 200 to every node. A response
// of EDS or RDS here carries the subscribed resources whose content hash
// differs from what the stream was last sent (the subscription's
// ReturnedResources, which this file fills with content hashes), at the
// type's version. ScopedRouteConfiguration is not one of them: Envoy treats
// a sotw SRDS response as the full set of scopes and removes those left
// out. When a new snapshot changes none of the EDS or RDS resources a node
// subscribed to, it is sent nothing and the type's new version is recorded
// as ACKed (as for delta, watcher.go): it runs exactly what that version
// serves it.
//
// Bytes shared. Every response is built from one Any per resource (anyCache)
// shared by every node, where the SnapshotCache copies every resource into
// a new Any for each node: at 1,000 nodes the first push allocated
// gigabytes.

// partialSotw reports whether sotw responses of typeURL carry only changed
// resources.
func partialSotw(typeURL string) bool {
	return typeURL == resource.RouteType || typeURL == resource.EndpointType
}

// maxResponseBytes bounds a partial-type sotw or a delta response. A node that
// needs more (its first RDS, 200 route configurations of 1.5 KB) gets them
// in several responses, one after the other as it ACKs: so that 1,000
// nodes connecting at once do not hold 1,000 encoded 300 KB responses in
// the gRPC server's buffers at the same time. Every response but the last
// carries a part version (partVersion), so that the node is recorded as
// running the type's version only once it holds all of it.
const maxResponseBytes = 96 << 10

// partVersion is the version of a response that carries part of version:
// version, "+part-" and a hash of what the node holds after it, so that it
// differs from every whole version and from the other parts.
func partVersion(version string, after map[string]string) string {
	h := sha256.New()
	names := make([]string, 0, len(after))
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s=%s\n", name, after[name])
	}
	return version + partSep + hex.EncodeToString(h.Sum(nil))[:8]
}

// partSep separates a version from its part in a part version.
const partSep = "+part-"

// wholeVersion is the version a part version is a part of (a whole version
// is its own).
func wholeVersion(v string) string {
	if i := strings.Index(v, partSep); i >= 0 {
		return v[:i]
	}
	return v
}

// sotwWatch is an open (held) sotw watch.
type sotwWatch struct {
	req *cache.Request
	sub cache.Subscription
	ch  chan cache.Response
}

func (w *watcher) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := &sotwWatch{req: req, sub: sub, ch: ch}
	return openWatchLocked(s, s.sotwWatches, req.GetNode().GetId(), sw, s.answerSotwLocked), nil
}

func (sw *sotwWatch) typeURL() string { return sw.req.GetTypeUrl() }

// answerSotwLocked answers sw from snap when the node should be sent
// something, and reports whether it did.
//
// A full-state type (CDS, LDS, SRDS) is answered with every subscribed
// resource when snap's version is not the one the request carries, or when
// a subscribed resource was never sent on this stream (go-control-plane's
// SnapshotCache decides the same way). Its ReturnedResources only needs to
// tell the latter: for a wildcard subscription it is one entry, not one
// per resource (with 1,000 clusters and 1,000 nodes, that is a million map
// entries fewer).
//
// A partial type (EDS, RDS) is answered with the subscribed resources
// whose hash differs from what the stream was sent. When there are none,
// the node is recorded as running snap's version (whatever version it
// last acknowledged).
func (s *Server) answerSotwLocked(n *nodeState, snap *cache.Snapshot, sw *sotwWatch) bool {
	t := sw.req.GetTypeUrl()
	version := snap.GetVersion(t)
	items := snap.GetResourcesAndTTL(t)
	hashes := snap.GetVersionMap(t)
	returned, hold := afterNACK(n, t, version, sw.req.GetErrorDetail() != nil, sw.sub.ReturnedResources())
	if hold {
		return false
	}
	wildcard := sw.sub.IsWildcard()
	subscribed := sw.sub.SubscribedResources()
	partial := partialSotw(t)
	var next map[string]string
	var send []string
	if partial || !wildcard {
		next = make(map[string]string, max(len(returned), len(items)))
	}
	changed := false
	for name := range items {
		if !wildcard {
			if _, ok := subscribed[name]; !ok {
				continue
			}
		}
		h := hashes[name]
		if next != nil {
			next[name] = h
		}
		if partial {
			if prev, ok := returned[name]; !ok || prev != h {
				send = append(send, name)
			}
			continue
		}
		send = append(send, name)
		if _, ok := returned[name]; !ok && !wildcard {
			changed = true // subscribed, never sent
		}
	}
	if !partial {
		if wildcard {
			_, sent := returned[wildcardSent]
			changed = changed || (!sent && len(send) > 0)
			next = map[string]string{wildcardSent: version}
		}
		if !changed && sw.req.GetVersionInfo() == version {
			return false
		}
		return s.sendSotwLocked(n, sw, version, items, hashes, send, next, returned)
	}
	if len(send) == 0 {
		// The stream answered every response of this type (a watch is
		// open) and holds exactly snap's resources.
		if sw.req.GetErrorDetail() == nil {
			s.recordSyncLocked(n, t, version)
		}
		return false
	}
	return s.sendSotwLocked(n, sw, version, items, hashes, send, next, returned)
}

// afterNACK adjusts what a stream is known to hold when the request is a
// NACK. ReturnedResources records what was sent, not what was accepted:
// after a NACK the node may hold none of the rejected response (or only
// some of it). While the node is still at the rejected version, nothing is
// sent (hold): not the same resources again, not the next part of them.
// Once it moves on (back to its last good Set, or to a newer one), it is
// sent every subscribed resource, as if the stream knew nothing.
func afterNACK(n *nodeState, typeURL, version string, nack bool, returned map[string]string) (map[string]string, bool) {
	if !nack {
		return returned, false
	}
	if r := n.typ(typeURL).lastNACK; r != nil && r.Version == version {
		return returned, true
	}
	return nil, false
}

// wildcardSent is the ReturnedResources entry of a wildcard subscription
// to a full-state type once it was sent a response (not a resource name:
// names are never empty).
const wildcardSent = ""

// sendSotwLocked sends the resources send of items at version; for a
// partial type a response over maxResponseBytes is cut into parts.
func (s *Server) sendSotwLocked(n *nodeState, sw *sotwWatch, version string, items map[string]types.ResourceWithTTL, hashes map[string]string, send []string, next, returned map[string]string) bool {
	t := sw.req.GetTypeUrl()
	partial := partialSotw(t)
	sort.Strings(send)
	anys := make([]*anypb.Any, 0, len(send))
	size := 0
	for i, name := range send {
		a, err := s.anys.get(t, hashes[name], items[name].Resource)
		if err != nil {
			s.log.Error("marshal resource", "node", n.id, "type", t, "error", err)
			return false
		}
		if partial && i > 0 && size+len(a.GetValue()) > maxResponseBytes {
			// The rest goes in the next responses, as the node asks
			// again: this one is a part, with its own version.
			for _, rest := range send[i:] {
				if prev, ok := returned[rest]; ok {
					next[rest] = prev
				} else {
					delete(next, rest)
				}
			}
			version = partVersion(version, next)
			break
		}
		size += len(a.GetValue())
		anys = append(anys, a)
	}
	resp := &cache.PassthroughResponse{
		Request:           sw.req,
		DiscoveryResponse: &discovery.DiscoveryResponse{VersionInfo: version, TypeUrl: t, Resources: anys},
		ReturnedResources: next,
	}
	select {
	case sw.ch <- resp:
		return true
	default:
		// Cannot happen: the stream's channel has a slot per type and
		// one watch per type is open at a time.
		s.log.Error("sotw response channel full: response dropped", "node", n.id, "type", t)
		return false
	}
}

// anyCache holds each served resource's Any, so that the wire bytes of a
// resource are copied once, not once per node. It is keyed by type and
// content hash (the snapshot's version map): a resource that did not change
// between two revisions keeps its Any, though translate built it anew. It
// keeps the Anys asked for since the last rotation and the one before.
type anyCache struct {
	cur, prev map[anyKey]*anypb.Any
}

type anyKey struct{ typeURL, hash string }

// anyCacheRotate: past this many entries the cache starts a new generation.
const anyCacheRotate = 50_000

// get is r's Any; hash is r's content hash.
func (c *anyCache) get(typeURL, hash string, r types.Resource) (*anypb.Any, error) {
	k := anyKey{typeURL, hash}
	if a, ok := c.cur[k]; ok {
		return a, nil
	}
	a, ok := c.prev[k]
	if !ok {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", typeURL, cache.GetResourceName(r), err)
		}
		a = &anypb.Any{TypeUrl: typeURL, Value: b}
	}
	if c.cur == nil || len(c.cur) >= anyCacheRotate {
		c.prev, c.cur = c.cur, map[anyKey]*anypb.Any{}
	}
	c.cur[k] = a
	return a, nil
}
