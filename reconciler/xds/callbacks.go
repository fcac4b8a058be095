package xds

import (
	"context"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// callbacks are go-control-plane's hooks. They run synchronously on the
// stream's goroutine; OnStreamRequest and OnStreamDeltaRequest run before the
// request's watch is created (sotw/v3/ads.go, sotw/v3/xds.go,
// delta/v3/server.go), which is what lets a new node get its snapshot, and a
// NACKing node its reset, before its request is answered.
type callbacks struct{ s *Server }

var _ serverv3.Callbacks = callbacks{}

func (c callbacks) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c.s.openStream(ctx, streamKey{false, id}, typeURL)
	return nil
}

func (c callbacks) OnStreamClosed(id int64, _ *corev3.Node) {
	c.s.closeStream(streamKey{false, id})
}

func (c callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c.s.openStream(ctx, streamKey{true, id}, typeURL)
	return nil
}

func (c callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.s.closeStream(streamKey{true, id})
}

// OnStreamRequest tracks a sotw request. In sotw, version_info is the last
// version the client accepted (on an ACK, the one just sent; on a NACK, the
// previous one) and response_nonce names the response it answers.
func (c callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t := req.GetTypeUrl()
	st, n, err := s.attach(streamKey{false, id}, req.GetNode(), t)
	if err != nil {
		return err
	}
	now := time.Now()
	switch {
	case req.GetResponseNonce() == "":
		// A first request: after a reconnect it carries the version the
		// client already has. Versions are content hashes, so that is
		// exactly what it runs.
		if v := req.GetVersionInfo(); v != "" {
			s.recordACK(n, t, v, now)
		}
	case req.GetErrorDetail() == nil:
		s.recordACK(n, t, req.GetVersionInfo(), now)
	default:
		rejected, _ := st.sentVersion(t, req.GetResponseNonce())
		rejected = wholeVersion(rejected) // a part of a version (sotw.go) fails all of it
		s.recordNACK(n, t, rejected, req.GetErrorDetail().GetMessage(), now)
		if rejected != "" && n.cur.GetVersion(t) == rejected {
			// No Set to go back to: hold the watch instead of answering
			// the NACK with the version it rejects.
			req.VersionInfo = rejected
		}
	}
	s.advanceLocked(n, false)
	s.notifyLocked()
	return nil
}

func (c callbacks) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[streamKey{false, id}]; st != nil {
		st.addSent(resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
	}
}

// OnStreamDeltaRequest tracks a delta request: a response_nonce without
// error_detail ACKs that response, with error_detail NACKs it. Delta
// requests carry no version: the one of the named response is used.
func (c callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t := req.GetTypeUrl()
	if st := s.streams[streamKey{true, id}]; t == "" && st != nil {
		t = st.typeURL // per-type services fill it in after this callback
	}
	st, n, err := s.attach(streamKey{true, id}, req.GetNode(), t)
	if err != nil {
		return err
	}
	nonce := req.GetResponseNonce()
	if nonce == "" {
		return nil // first request: the watcher tracks what it already has
	}
	defer s.advanceLocked(n, false)
	version, known := st.sentVersion(t, nonce)
	if req.GetErrorDetail() != nil {
		version = wholeVersion(version) // a part of a version (watcher.go) fails all of it
	}
	now := time.Now()
	if req.GetErrorDetail() == nil {
		if known {
			s.recordACK(n, t, version, now)
		}
	} else {
		s.recordNACK(n, t, version, req.GetErrorDetail().GetMessage(), now)
	}
	s.notifyLocked()
	return nil
}

func (c callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[streamKey{true, id}]; st != nil {
		st.addSent(resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
	}
}

// OnFetchRequest refuses REST-style fetches: a node is registered, and
// given its snapshot, by its streams.
func (c callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "gitxds serves streaming xDS only")
}

func (c callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

func (s *Server) openStream(ctx context.Context, key streamKey, typeURL string) {
	var p *peerIdentity
	if s.ident != nil {
		p = peerOf(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[key] = &streamState{key: key, typeURL: typeURL, peer: p, requested: map[string]bool{}, sent: map[string][]sentResponse{}}
}

// attach returns the stream and its node, and notes that the stream
// requested typeURL. On the stream's first request it registers the node: a
// node seen for the first time gets its Set here, before its first request
// is answered (the first step at once; the next ones as it ACKs).
func (s *Server) attach(key streamKey, node *corev3.Node, typeURL string) (*streamState, *nodeState, error) {
	st := s.streams[key]
	if st == nil { // not opened through the callbacks: cannot happen
		st = &streamState{key: key, requested: map[string]bool{}, sent: map[string][]sentResponse{}}
		s.streams[key] = st
	}
	st.requested[typeURL] = true
	if st.node != nil {
		return st, st.node, nil
	}
	if node.GetId() == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "the first request of a stream must carry node.id")
	}
	now := time.Now()
	n := s.nodes[node.GetId()]
	var ident string
	var pinned map[string]string
	if s.ident != nil {
		var err error
		if ident, pinned, err = s.ident.check(node.GetId(), st.peer); err != nil {
			s.log.Warn("xDS stream refused", "node", node.GetId(), "error", err)
			return nil, nil, status.Error(codes.PermissionDenied, err.Error())
		}
		if n != nil && n.identity != ident {
			s.log.Warn("xDS stream refused: node id connected with another identity", "node", node.GetId(), "identity", ident, "connected", n.identity)
			return nil, nil, status.Errorf(codes.PermissionDenied, "node %q is connected already with another certificate identity", node.GetId())
		}
	}
	isNew := n == nil
	if isNew {
		n = newNode(node, now)
		n.identity = ident
		if s.ident != nil && s.ident.pinned() {
			n.labels = pinned
		}
		// After pinning: a node whose labels are pinned cannot name
		// another group in its metadata.
		n.group = snapshot.GroupOf(n.labels)
		s.nodes[n.id] = n
	}
	n.streams[key] = st
	st.node = n
	if isNew {
		s.log.Info("node connected", "node", n.id, "class", n.class, "group", n.group, "userAgent", n.userAgent)
		s.emitLocked(Event{NodeID: n.id, Kind: Connect, Time: now})
		s.applyLocked(n)
	}
	s.notifyLocked()
	return st, n, nil
}

func (s *Server) closeStream(key streamKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[key]
	delete(s.streams, key)
	if st == nil || st.node == nil {
		return
	}
	n := st.node
	delete(n.streams, key)
	if len(n.streams) == 0 {
		s.stopStepTimerLocked(n)
		s.stopDrainTimerLocked(n)
		delete(s.nodes, n.id)
		delete(s.deltaWatches, n.id)
		delete(s.sotwWatches, n.id)
		s.cache.ClearSnapshot(n.id)
		s.log.Info("node disconnected", "node", n.id)
		s.emitLocked(Event{NodeID: n.id, Kind: Disconnect, Time: time.Now()})
	} else {
		s.advanceLocked(n, false) // fewer subscriptions to wait for
	}
	s.notifyLocked()
}

// recordACK notes that node n runs version of typeURL.
func (s *Server) recordACK(n *nodeState, typeURL, version string, now time.Time) {
	ts := n.typ(typeURL)
	ts.acked, ts.ackedAt = version, now
	s.emitLocked(Event{NodeID: n.id, TypeURL: typeURL, Version: setVersion(version), Kind: ACK, Time: now})
	s.checkGoodLocked(n)
}

// checkGoodLocked makes the served Set the node's last good one once the
// node has ACKed all of it.
func (s *Server) checkGoodLocked(n *nodeState) {
	if n.served != nil && n.lastGood != n.served && n.hasACKed(n.served) {
		n.lastGood = n.served
	}
}
