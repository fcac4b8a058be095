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

// Only what changed, in state of the world too.
//
// The xDS protocol lets a state-of-the-world response of a type other than
// Listener and Cluster carry only some of the subscribed resources: a
// client keeps those it is not sent ("Grouping resources into responses"
// in the xDS protocol; Envoy and gRPC-Go both do). go-control-plane's
// SnapshotCache always sends every subscribed resource, so one changed
// route configuration among 200 re-sends all 200 to every node. For these
// types the watcher answers sotw watches itself: each response carries the
// subscribed resources whose content hash differs from what the stream was
// last sent (the subscription's ReturnedResources, which this file fills
// with content hashes), at the type's version. ScopedRouteConfiguration is
// not one of them: Envoy treats a sotw SRDS response as the full set of
// scopes and removes those left out.
//
// When a new snapshot changes none of the resources a node subscribed to,
// it is sent nothing and the type's new version is recorded as ACKed (as
// for delta, watcher.go): it runs exactly what that version serves it.

// partialSotw reports whether sotw responses of typeURL carry only changed
// resources.
func partialSotw(typeURL string) bool {
	return typeURL == resource.RouteType || typeURL == resource.EndpointType
}

// maxSotwResponseBytes bounds a partial type's response. A node that
// needs more (its first RDS, 200 route configurations of 1.5 KB) gets them
// in several responses, one after the other as it ACKs: so that 1,000
// nodes connecting at once do not hold 1,000 encoded 300 KB responses in
// the gRPC server's buffers at the same time. Every response but the last
// carries a part version (partVersion), so that the node is recorded as
// running the type's version only once it holds all of it.
const maxSotwResponseBytes = 96 << 10

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

// sotwWatch is an open (held) sotw watch of a partial type.
type sotwWatch struct {
	req *cache.Request
	sub cache.Subscription
	ch  chan cache.Response
}

func (w *watcher) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	t := req.GetTypeUrl()
	if !partialSotw(t) {
		return w.SnapshotCache.CreateWatch(req, sub, ch)
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetNode().GetId()
	sw := &sotwWatch{req: req, sub: sub, ch: ch}
	n := s.nodes[id]
	if n != nil && n.cur != nil && s.answerSotwLocked(n, n.cur, sw) {
		return func() {}, nil
	}
	s.nextWatch++
	wid := s.nextWatch
	if s.sotwWatches[id] == nil {
		s.sotwWatches[id] = map[int64]*sotwWatch{}
	}
	s.sotwWatches[id][wid] = sw
	return func() {
		s.mu.Lock()
		delete(s.sotwWatches[id], wid)
		s.mu.Unlock()
	}, nil
}

// answerSotwHeldLocked answers node n's held sotw watches of the types
// whose version changes from prev to next.
func (s *Server) answerSotwHeldLocked(n *nodeState, prev, next *cache.Snapshot) {
	for wid, sw := range s.sotwWatches[n.id] {
		t := sw.req.GetTypeUrl()
		if prev != nil && next.GetVersion(t) == prev.GetVersion(t) {
			continue
		}
		if s.answerSotwLocked(n, next, sw) {
			delete(s.sotwWatches[n.id], wid)
		}
	}
}

// answerSotwLocked answers sw from snap when the stream lacks a subscribed
// resource of snap or holds another version of one, and reports whether it
// did. When the stream holds exactly snap's resources, the node is recorded
// as running snap's version (whatever version it last acknowledged).
func (s *Server) answerSotwLocked(n *nodeState, snap *cache.Snapshot, sw *sotwWatch) bool {
	t := sw.req.GetTypeUrl()
	version := snap.GetVersion(t)
	items := snap.GetResourcesAndTTL(t)
	hashes := snap.GetVersionMap(t)
	returned := sw.sub.ReturnedResources()
	wildcard := sw.sub.IsWildcard()
	subscribed := sw.sub.SubscribedResources()
	next := make(map[string]string, len(returned))
	var send []string
	for name := range items {
		if !wildcard {
			if _, ok := subscribed[name]; !ok {
				continue
			}
		}
		h := hashes[name]
		next[name] = h
		if prev, ok := returned[name]; !ok || prev != h {
			send = append(send, name)
		}
	}
	if len(send) == 0 {
		// The stream answered every response of this type (a watch is
		// open) and holds exactly snap's resources.
		if sw.req.GetErrorDetail() == nil {
			s.recordSyncLocked(n, t, version)
		}
		return false
	}
	sort.Strings(send)
	anys := make([]*anypb.Any, 0, len(send))
	size := 0
	for i, name := range send {
		a, err := s.anys.get(t, items[name].Resource)
		if err != nil {
			s.log.Error("marshal resource", "node", n.id, "type", t, "error", err)
			return false
		}
		if i > 0 && size+len(a.GetValue()) > maxSotwResponseBytes {
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
// resource are copied once, not once per node. It keeps the Anys of the
// resources asked for since the last rotation and the one before.
type anyCache struct {
	cur, prev map[types.Resource]*anypb.Any
}

// anyCacheRotate: past this many entries the cache starts a new generation.
const anyCacheRotate = 50_000

func (c *anyCache) get(typeURL string, r types.Resource) (*anypb.Any, error) {
	if a, ok := c.cur[r]; ok {
		return a, nil
	}
	a, ok := c.prev[r]
	if !ok {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", typeURL, cache.GetResourceName(r), err)
		}
		a = &anypb.Any{TypeUrl: typeURL, Value: b}
	}
	if c.cur == nil || len(c.cur) >= anyCacheRotate {
		c.prev, c.cur = c.cur, map[types.Resource]*anypb.Any{}
	}
	c.cur[r] = a
	return a, nil
}
