package xds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

var (
	cds = resource.ClusterType
	eds = resource.EndpointType
	lds = resource.ListenerType
	rds = resource.RouteType
)

func TestConnectGetsDefault(t *testing.T) {
	s, addr := startServer(t)
	events, stop := s.Subscribe()
	defer stop()
	s1 := buildSet(spec{rev: "main@sha1:1"})
	s.SetDefault(s1)

	envoy := connectSotw(t, addr, nodeOpts("envoy-1", "envoy", map[string]string{"rollout-group": "canary"}))
	grpcNode := connectSotw(t, addr, nodeOpts("grpc-1", "gRPC Go", nil))
	waitACK(t, s, s1, "envoy-1", "grpc-1")

	for _, n := range []*fleetsim.Node{envoy, grpcNode} {
		if !n.Runs(s1) {
			t.Fatalf("%s does not run s1", n.ID())
		}
		// Each type answered once, with s1's version for the node's class.
		for _, r := range n.Log() {
			if want := s1.Version(n.Class(), r.TypeURL); r.Version != want {
				t.Errorf("%s got %s version %s, want %s", n.ID(), r.TypeURL, r.Version, want)
			}
		}
		// Asked all at once, answered in order: each stage waits for the
		// ACK of the one before.
		if got := typeOrder(n.Log()); !slices.Equal(got, []string{cds, eds, lds, rds}) {
			t.Errorf("%s got %v, want CDS, EDS, LDS, RDS", n.ID(), short(got))
		}
	}
	info, ok := s.Node("envoy-1")
	if !ok {
		t.Fatal("envoy-1 not registered")
	}
	if info.Class != snapshot.Envoy || info.Labels["rollout-group"] != "canary" || info.Streams != 1 || info.FirstSeen.IsZero() {
		t.Errorf("envoy-1 info = %+v", info)
	}
	if info.Served != s1 || info.LastGood != s1 || !info.HasACKed(s1) {
		t.Errorf("envoy-1 served %v lastGood %v", info.Served, info.LastGood)
	}
	for _, typ := range fourTypes {
		ts := info.Types[typ]
		if !ts.Requested || ts.ACKed != s1.Version(snapshot.Envoy, typ) || ts.LastNACK != nil {
			t.Errorf("envoy-1 %s = %+v", typ, ts)
		}
	}
	if g, _ := s.Node("grpc-1"); g.Class != snapshot.GRPC {
		t.Errorf("grpc-1 class = %s", g.Class)
	}
	if ids := nodeIDs(s.Nodes()); !slices.Equal(ids, []string{"envoy-1", "grpc-1"}) {
		t.Errorf("Nodes() = %v", ids)
	}
	if s.Served("envoy-1") != s1 || s.Served("nobody") != nil {
		t.Error("Served")
	}

	envoy.Close()
	eventually(t, "envoy-1 gone", func() bool { _, ok := s.Node("envoy-1"); return !ok })
	kinds := map[EventKind]int{}
	drain(events, func(ev Event) {
		if ev.NodeID == "envoy-1" {
			kinds[ev.Kind]++
		}
	})
	if kinds[Connect] != 1 || kinds[Disconnect] != 1 || kinds[ACK] < 4 || kinds[NACK] != 0 {
		t.Errorf("envoy-1 events: %v", kinds)
	}
}

// A node that connects before there is any Set waits; the first Set then
// reaches it in order.
func TestNodeBeforeAnySetGetsFirstSetInOrder(t *testing.T) {
	s, addr := startServer(t)
	n := connectSotw(t, addr, nodeOpts("early", "envoy", nil))
	eventually(t, "registered", func() bool { _, ok := s.Node("early"); return ok })
	time.Sleep(50 * time.Millisecond)
	if got := n.Log(); len(got) != 0 {
		t.Fatalf("answered before any Set: %+v", got)
	}
	s1 := buildSet(spec{})
	s.SetDefault(s1)
	waitACK(t, s, s1, "early")
	if got := typeOrder(n.Log()); !slices.Equal(got, []string{cds, eds, lds, rds}) {
		t.Errorf("order = %v", short(got))
	}
}

// An update reaches a connected node as CDS, EDS, LDS, RDS; dropped
// clusters go last (union first, removal after RDS). The removal of
// endpoints sends nothing: a sotw EDS response carries only what changed,
// and the node drops a cluster's endpoints with the cluster.
func TestUpdateOrderMakeBeforeBreak(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{clusters: []string{"old", "shared"}})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	before := len(n.Log())

	s2 := buildSet(spec{clusters: []string{"new", "shared"}, endpointPort: 9001, listenerPort: 8081, routeTimeout: time.Second})
	s.SetDefault(s2)
	waitACK(t, s, s2, "e")
	got := n.Log()[before:]
	if order := typeOrder(got); !slices.Equal(order, []string{cds, eds, lds, rds, cds}) {
		t.Fatalf("order = %v", short(order))
	}
	if names := got[1].Names; !sameSet(names, "new", "shared") {
		t.Errorf("EDS = %v, want only the new and changed endpoints", names)
	}
	if names := got[0].Names; !sameSet(names, "new", "old", "shared") {
		t.Errorf("first CDS = %v, want the union", names)
	}
	if names := got[4].Names; !sameSet(names, "new", "shared") {
		t.Errorf("last CDS = %v, want the new clusters", names)
	}
	if got[4].Version != s2.Version(snapshot.Envoy, cds) || got[2].Version != s2.Version(snapshot.Envoy, lds) {
		t.Errorf("versions: %+v", got)
	}
	if !n.Runs(s2) {
		t.Error("node does not run s2")
	}

	// Only routes change: only RDS is sent.
	before = len(n.Log())
	s3 := buildSet(spec{clusters: []string{"new", "shared"}, endpointPort: 9001, listenerPort: 8081, routeTimeout: 2 * time.Second})
	s.SetDefault(s3)
	waitACK(t, s, s3, "e")
	if order := typeOrder(n.Log()[before:]); !slices.Equal(order, []string{rds}) {
		t.Errorf("routes-only change sent %v", short(order))
	}
}

// Sets that follow each other faster than the node ACKs: a node never gets
// a route to a cluster it has not been sent, nor loses a cluster its routes
// still use.
func TestOrderUnderChurn(t *testing.T) {
	s, addr := startServer(t)
	set := func(i int) *snapshot.Set {
		return buildSet(spec{rev: fmt.Sprintf("main@sha1:%d", i), clusters: []string{fmt.Sprintf("c%d", i)}, endpointPort: uint32(9000 + i)})
	}
	s.SetDefault(set(1))
	o := nodeOpts("e", "envoy", nil)
	o.Delay = 10 * time.Millisecond
	n := connectSotw(t, addr, o)
	waitACK(t, s, set(1), "e")
	var last *snapshot.Set
	for i := 2; i <= 6; i++ {
		last = set(i)
		s.SetDefault(last)
		time.Sleep(7 * time.Millisecond)
	}
	waitACK(t, s, last, "e")
	clusters, refs := map[string]bool{}, []string{}
	for i, r := range n.Log() {
		switch r.TypeURL {
		case cds:
			clusters = map[string]bool{}
			for _, c := range r.Names {
				clusters[c] = true
			}
			for _, c := range refs {
				if !clusters[c] {
					t.Errorf("response %d: CDS %v drops cluster %s still routed to", i, r.Names, c)
				}
			}
		case rds:
			refs = r.Refs[cds]
			for _, c := range refs {
				if !clusters[c] {
					t.Errorf("response %d: RDS routes to %s before CDS sent it (CDS has %v)", i, c, clusters)
				}
			}
		}
	}
	t.Logf("%d responses for 5 changes", len(n.Log()))
}

// A node that does not ACK a stage gets the next one after StepTimeout.
func TestStageTimeout(t *testing.T) {
	s, addr := startServerOpts(t, Options{StepTimeout: 100 * time.Millisecond})
	s1 := buildSet(spec{})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	s2 := buildSet(spec{endpointPort: 9001, listenerPort: 8081, routeTimeout: time.Second})
	// The EDS stage goes unanswered: the next stage (LDS with RDS) is sent
	// after the timeout; it goes unanswered too, and nothing is left.
	n.Silent(func(typ, v string) bool { return v == s2.Version(snapshot.Envoy, typ) && (typ == eds || typ == lds) })
	start := time.Now()
	s.SetDefault(s2)
	eventually(t, "LDS of s2 sent", func() bool { return n.Responses(lds, s2.Version(snapshot.Envoy, lds)) == 1 })
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("LDS sent after %v, before the stage timeout", d)
	}
	eventually(t, "RDS of s2 sent", func() bool { return n.Responses(rds, s2.Version(snapshot.Envoy, rds)) == 1 })
	if info, _ := s.Node("e"); info.StepsLeft != 0 || info.HasACKed(s2) {
		t.Errorf("stages left %d, acked %v", info.StepsLeft, info.HasACKed(s2))
	}
}

func TestAssignMovesOneNodeOnly(t *testing.T) {
	s, addr := startServer(t)
	s1, s2 := buildSet(spec{}), buildSet(spec{routeTimeout: time.Second, rev: "main@sha1:2"})
	s.SetDefault(s1)
	a := connectSotw(t, addr, nodeOpts("a", "envoy", nil))
	b := connectSotw(t, addr, nodeOpts("b", "envoy", nil))
	waitACK(t, s, s1, "a", "b")
	bBefore := len(b.Log())

	s.Assign([]string{"a"}, s2)
	waitACK(t, s, s2, "a")
	time.Sleep(50 * time.Millisecond)
	if got := len(b.Log()); got != bBefore {
		t.Errorf("b got %d new responses", got-bBefore)
	}
	if s.Served("a") != s2 || s.Served("b") != s1 {
		t.Errorf("served a=%v b=%v", s.Served("a").Revision, s.Served("b").Revision)
	}
	// The assignment survives a reconnect; Unassign goes back to default.
	a.Close()
	eventually(t, "a gone", func() bool { _, ok := s.Node("a"); return !ok })
	connectSotw(t, addr, nodeOpts("a", "envoy", nil))
	waitACK(t, s, s2, "a")
	s.Unassign([]string{"a"})
	waitACK(t, s, s1, "a")
	if s.Served("a") != s1 {
		t.Error("a not back on the default")
	}
}

func TestSetDefaultNilKeepsSnapshots(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	before := len(n.Log())
	s.SetDefault(nil)
	s.Assign([]string{"e"}, nil)
	time.Sleep(50 * time.Millisecond)
	if s.Served("e") != s1 || s.Default() != s1 || len(n.Log()) != before {
		t.Error("a nil Set changed what is served")
	}
	// A node connecting now still gets s1.
	connectSotw(t, addr, nodeOpts("late", "envoy", nil))
	waitACK(t, s, s1, "late")
}

// Non-ADS clients use the per-type services.
func TestPerTypeService(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{clusters: []string{"x", "y"}})
	s.SetDefault(s1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := clusterservice.NewClusterDiscoveryServiceClient(dial(t, addr)).StreamClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: &corev3.Node{Id: "cds-only", UserAgentName: "envoy"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTypeUrl() != cds || resp.GetVersionInfo() != s1.Version(snapshot.Envoy, cds) || len(resp.GetResources()) != 2 {
		t.Fatalf("CDS response: type %s version %s, %d resources", resp.GetTypeUrl(), resp.GetVersionInfo(), len(resp.GetResources()))
	}
	if err := stream.Send(&discovery.DiscoveryRequest{VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CDS ACK", func() bool {
		info, _ := s.Node("cds-only")
		return info.HasACKed(s1)
	})
}

func TestWaitACKTimeoutNamesNodes(t *testing.T) {
	s, addr := startServer(t)
	s1 := buildSet(spec{})
	s.SetDefault(s1)
	connectSotw(t, addr, nodeOpts("slow", "envoy", nil))
	waitACK(t, s, s1, "slow")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// s2 is never served to "slow": it cannot ACK it.
	err := s.WaitACK(ctx, []string{"slow", "not-connected"}, buildSet(spec{routeTimeout: time.Second}))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "slow") || strings.Contains(err.Error(), "not-connected") {
		t.Fatalf("WaitACK = %v", err)
	}
}

func nodeIDs(ns []NodeInfo) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func typeOrder(rs []fleetsim.Response) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.TypeURL)
	}
	return out
}

func short(types []string) []string {
	var out []string
	for _, t := range types {
		out = append(out, t[strings.LastIndex(t, ".")+1:])
	}
	return out
}

func sameSet(got []string, want ...string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func drain(ch <-chan Event, f func(Event)) {
	for {
		select {
		case ev := <-ch:
			f(ev)
		default:
			return
		}
	}
}
