package scale

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

// deltaFleet is a simulated fleet of incremental (delta) ADS nodes: each
// subscribes to the four types as wildcard, validates every resource it
// receives (fleetsim.Validate: decode and ValidateAll), keeps its resources
// by name, and ACKs or NACKs. testenv/fleetsim simulates the
// state-of-the-world nodes.
type deltaFleet struct {
	nodes []*deltaNode
	conns []*grpc.ClientConn
	bytes atomic.Int64
}

type deltaNode struct {
	f      *deltaFleet
	id     string
	node   *corev3.Node
	class  snapshot.Class
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	accepted  map[string]version // type URL -> system version of the last ACKed response
	resources map[string]map[string]bool
	responses int
	nacks     int
	err       error
}

type version struct {
	v  string
	at time.Time
}

func startDelta(ctx context.Context, n int, addr string) (*deltaFleet, error) {
	f := &deltaFleet{}
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
		if err != nil {
			f.close()
			return nil, err
		}
		f.conns = append(f.conns, cc)
		id := fmt.Sprintf("delta-%d", i)
		nd := &deltaNode{f: f, id: id, node: &corev3.Node{Id: id, UserAgentName: "envoy"}, done: make(chan struct{}),
			accepted: map[string]version{}, resources: map[string]map[string]bool{}}
		nd.class = snapshot.ClassOf(nd.node)
		f.nodes = append(f.nodes, nd)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := nd.connect(ctx, cc); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// deltaTypes are the types a delta node subscribes to, as wildcards: every
// type but SDS, which Envoy asks for by name only (the harness's Sets have
// no TLS listeners).
var deltaTypes = slices.DeleteFunc(slices.Clone(snapshot.TypeURLs), func(t string) bool { return t == resource.SecretType })

func (n *deltaNode) connect(ctx context.Context, cc *grpc.ClientConn) error {
	sctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).DeltaAggregatedResources(sctx)
	if err != nil {
		cancel()
		close(n.done)
		return err
	}
	for _, t := range deltaTypes {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: n.node, TypeUrl: t}); err != nil {
			cancel()
			close(n.done)
			return err
		}
	}
	go func() {
		defer close(n.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				if sctx.Err() == nil {
					n.mu.Lock()
					n.err = err
					n.mu.Unlock()
				}
				return
			}
			n.f.bytes.Add(int64(proto.Size(resp)))
			if err := stream.Send(n.answer(resp)); err != nil {
				return
			}
		}
	}()
	return ctx.Err()
}

func (n *deltaNode) answer(resp *discovery.DeltaDiscoveryResponse) *discovery.DeltaDiscoveryRequest {
	typ := resp.GetTypeUrl()
	anys := make([]*anypb.Any, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		anys = append(anys, r.GetResource())
	}
	msg := ""
	if err := fleetsim.Validate(typ, anys); err != nil {
		msg = err.Error()
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.responses++
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}
	if msg != "" {
		n.nacks++
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: msg}
		return req
	}
	have := n.resources[typ]
	if have == nil {
		have = map[string]bool{}
		n.resources[typ] = have
	}
	for _, r := range resp.GetResources() {
		have[r.GetName()] = true
	}
	for _, name := range resp.GetRemovedResources() {
		delete(have, name)
	}
	n.accepted[typ] = version{resp.GetSystemVersionInfo(), now}
	return req
}

// runsAt: the node ACKed set's version of every type, and when the last.
func (n *deltaNode) runsAt(set map[string]string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var last time.Time
	for _, t := range deltaTypes {
		a := n.accepted[t]
		if a.v != set[t] {
			return time.Time{}, false
		}
		if a.at.After(last) {
			last = a.at
		}
	}
	return last, true
}

// waitRuns waits until every node runs versions (type URL -> version) and
// returns the time of the last ACK.
func (f *deltaFleet) waitRuns(ctx context.Context, versions map[string]string) (time.Time, error) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		var last time.Time
		missing := 0
		for _, n := range f.nodes {
			n.mu.Lock()
			err := n.err
			n.mu.Unlock()
			if err != nil {
				return time.Time{}, fmt.Errorf("delta node %s: %w", n.id, err)
			}
			at, ok := n.runsAt(versions)
			if !ok {
				missing++
				continue
			}
			if at.After(last) {
				last = at
			}
		}
		if missing == 0 {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d delta nodes not there: %w", missing, len(f.nodes), ctx.Err())
		case <-t.C:
		}
	}
}

func (f *deltaFleet) nacks() int {
	k := 0
	for _, n := range f.nodes {
		n.mu.Lock()
		k += n.nacks
		n.mu.Unlock()
	}
	return k
}

func (f *deltaFleet) close() {
	for _, n := range f.nodes {
		if n.cancel != nil {
			n.cancel()
			<-n.done
		}
	}
	for _, cc := range f.conns {
		_ = cc.Close()
	}
}
