package xds

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// measureWindow is how long the NACK tests count re-sends.
const measureWindow = time.Second

func rejectVersion(typeURL, version, msg string) func(string, string) string {
	return func(t, v string) string {
		if t == typeURL && v == version {
			return msg
		}
		return ""
	}
}

func TestNACKResetsToLastGood(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1"})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	events, stop := s.Subscribe()
	defer stop()

	s2 := buildSet(spec{rev: "main@sha1:2", clusters: []string{"other"}, endpointPort: 9001, listenerPort: 8081, routeTimeout: time.Second})
	bad := s2.Version(snapshot.Envoy, lds)
	n.Reject(rejectVersion(lds, bad, "listener http: cannot bind 0.0.0.0:8081"))
	start := time.Now()
	s.SetDefault(s2)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.WaitACK(ctx, []string{"e"}, s2)
	if err == nil || !strings.Contains(err.Error(), "node e") || !strings.Contains(err.Error(), lds) || !strings.Contains(err.Error(), "cannot bind") {
		t.Fatalf("WaitACK(s2) = %v, want the NACK", err)
	}
	eventually(t, "node back on s1", func() bool { return n.Runs(s1) })
	info, _ := s.Node("e")
	if info.Served != s1 || !info.HasACKed(s1) || info.LastGood != s1 {
		t.Errorf("served %v, lastGood %v", info.Served.Revision, info.LastGood)
	}
	if f, ok := info.Failed[s2.Hash()]; !ok || f.TypeURL != lds || f.Version != bad {
		t.Errorf("failed = %+v", info.Failed)
	}
	if r := info.Types[lds].LastNACK; r == nil || r.Version != bad || !strings.Contains(r.Error, "cannot bind") {
		t.Errorf("LastNACK = %+v", r)
	}

	time.Sleep(measureWindow - time.Since(start))
	sent := n.Responses(lds, bad)
	total := len(n.Log())
	t.Logf("NACKed LDS version sent %d time(s) in %v (%d responses in all since connect)", sent, time.Since(start).Round(time.Millisecond), total)
	if sent != 1 {
		t.Errorf("NACKed version sent %d times, want 1 (no re-send)", sent)
	}
	var nacks int
	drain(events, func(ev Event) {
		if ev.Kind == NACK {
			nacks++
			if ev.NodeID != "e" || ev.TypeURL != lds || ev.Version != bad || !strings.Contains(ev.Error, "cannot bind") {
				t.Errorf("NACK event %+v", ev)
			}
		}
	})
	if nacks != 1 {
		t.Errorf("%d NACK events, want 1", nacks)
	}

	// The rejected Set is not served to this node again; the next one is.
	before := len(n.Log())
	s.SetDefault(s2)
	time.Sleep(50 * time.Millisecond)
	if s.Served("e") != s1 || len(n.Log()) != before {
		t.Error("the rejected set was served again")
	}
	s3 := buildSet(spec{rev: "main@sha1:3", listenerPort: 8082})
	s.SetDefault(s3)
	waitACK(t, s, s3, "e")
}

// A node that never ACKed a Set keeps the one it rejected, without the
// rejected version being sent again.
func TestNACKWithoutLastGood(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1"})
	s.SetDefault(s1)
	bad := s1.Version(snapshot.Envoy, lds)
	o := nodeOpts("e", "envoy", nil)
	o.Reject = rejectVersion(lds, bad, "no")
	start := time.Now()
	n := connectSotw(t, addr, o)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	eventually(t, "connected", func() bool { _, ok := s.Node("e"); return ok })
	if err := s.WaitACK(ctx, []string{"e"}, s1); err == nil || !strings.Contains(err.Error(), lds) {
		t.Fatalf("WaitACK = %v", err)
	}
	time.Sleep(measureWindow - time.Since(start))
	sent := n.Responses(lds, bad)
	t.Logf("NACKed LDS version sent %d time(s) in %v", sent, time.Since(start).Round(time.Millisecond))
	if sent > 3 {
		t.Errorf("NACKed version sent %d times, want ≤ 3 (≤ 2 re-sends)", sent)
	}
	if s.Served("e") != s1 {
		t.Error("node lost its snapshot")
	}
	// A fixed Set goes through.
	s2 := buildSet(spec{rev: "main@sha1:2", listenerPort: 8081})
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
}

// TestNACKLoopBaseline measures what docs/architecture.md §8 warns of: the plain
// SnapshotCache answers every NACK with the version just rejected.
func TestNACKLoopBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for a second")
	}
	snapCache := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gs := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, snapCache, serverv3.CallbackFuncs{}, sotw.WithOrderedADS()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	defer gs.Stop()

	s1 := buildSet(spec{})
	snap, err := s1.CacheSnapshot(snapshot.Envoy)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapCache.SetSnapshot(ctx, "e", snap); err != nil {
		t.Fatal(err)
	}
	bad := s1.Version(snapshot.Envoy, lds)
	o := nodeOpts("e", "envoy", nil)
	o.Reject = rejectVersion(lds, bad, "no")
	n := connectSotw(t, lis.Addr().String(), o)
	time.Sleep(measureWindow)
	sent := n.Responses(lds, bad)
	t.Logf("plain SnapshotCache: NACKed LDS version sent %d times in %v", sent, measureWindow)
	n.Close()
	if sent < 100 {
		t.Errorf("baseline re-sent only %d times: the loop this package prevents is gone?", sent)
	}
}
