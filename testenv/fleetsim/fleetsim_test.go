package fleetsim_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

func startXDS(t *testing.T) (*xds.Server, string) {
	t.Helper()
	srv := xds.New(xds.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv, lis.Addr().String()
}

// Simulated nodes follow the server from Set to Set, and a node that NACKs
// is put back by the server and not sent the rejected version again.
func TestFleetFollowsAndNACKs(t *testing.T) {
	srv, addr := startXDS(t)
	s1 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r1"})
	s2 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r2", Variant: 1})
	s3 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r3", Variant: 2})
	srv.SetDefault(s1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := fleetsim.Start(ctx, 20, addr, fleetsim.Options{Labels: func(i int) map[string]string {
		return map[string]string{"index": string(rune('a' + i))}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WaitRuns(ctx, s1); err != nil {
		t.Fatal(err)
	}
	srv.SetDefault(s2)
	if _, err := f.WaitRuns(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Nodes()); got != 20 {
		t.Fatalf("server sees %d nodes, want 20", got)
	}
	if info, _ := srv.Node("sim-3"); info.Labels["index"] != "d" {
		t.Fatalf("labels of sim-3: %v", info.Labels)
	}

	bad := s3.Version(snapshot.Envoy, resource.RouteType)
	f.Node(3).RejectVersion(resource.RouteType, bad, "injected")
	srv.SetDefault(s3)
	if _, err := f.Wait(ctx, func(n *fleetsim.Node) (time.Time, bool) {
		if n.ID() == "sim-3" {
			return n.RunsAt(s2)
		}
		return n.RunsAt(s3)
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a hot loop would show here
	if got := f.Node(3).Responses(resource.RouteType, bad); got != 1 {
		t.Errorf("sim-3 got the NACKed RDS version %d times, want 1", got)
	}
	if _, nacks := f.Node(3).Totals(); nacks != 1 {
		t.Errorf("sim-3 NACKed %d times, want 1", nacks)
	}
	if got := f.Responses(resource.RouteType, bad); got != 20 {
		t.Errorf("the fleet got the new RDS version %d times, want 20 (once per node)", got)
	}
}

// An invalid resource is NACKed by validation, without any rule.
func TestValidateNACKs(t *testing.T) {
	srv, addr := startXDS(t)
	s1 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r1"})
	srv.SetDefault(s1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := fleetsim.Start(ctx, 2, addr, fleetsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WaitRuns(ctx, s1); err != nil {
		t.Fatal(err)
	}
	bad := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "bad", Variant: 3})
	bad.Classes[snapshot.Envoy].Clusters[0].Name = "" // fails ValidateAll (min_len 1)
	srv.SetDefault(bad)
	if _, err := f.Wait(ctx, func(n *fleetsim.Node) (time.Time, bool) {
		_, nacks := n.Totals()
		return time.Time{}, nacks == 1 && n.Runs(s1)
	}); err != nil {
		for _, n := range f.Nodes() {
			r, k := n.Totals()
			t.Logf("%s: responses %d nacks %d last %q counts %v", n.ID(), r, k, n.LastNACK(), n.Counts())
		}
		for _, typ := range snapshot.TypeURLs {
			t.Logf("%s: s1 %s bad %s", typ, s1.Version(snapshot.Envoy, typ), bad.Version(snapshot.Envoy, typ))
		}
		info, _ := srv.Node("sim-0")
		t.Logf("server: served %s lastGood %v types %+v failed %+v", info.Served.Revision, info.LastGood != nil, info.Types, info.Failed)
		t.Fatal(err)
	}
	if msg := f.Node(0).LastNACK(); msg == "" {
		t.Fatal("no NACK message")
	} else {
		t.Logf("NACK: %s", msg)
	}
}

// A delta fleet follows the server from Set to Set too, and its NACK rule
// holds.
func TestDeltaFleetFollowsAndNACKs(t *testing.T) {
	srv, addr := startXDS(t)
	s1 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r1"})
	s2 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r2", Variant: 1})
	s3 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r3", Variant: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The Sets have no scoped routes: a delta server sends nothing of an
	// empty type, so a delta node subscribed to SRDS would never have its
	// version.
	f, err := fleetsim.Start(ctx, 5, addr, fleetsim.Options{Prefix: "delta", Delta: true, Types: fleetsim.ClassicTypes})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range []*snapshot.Set{s1, s2} {
		srv.SetDefault(s)
		if _, err := f.WaitRuns(ctx, s); err != nil {
			t.Fatalf("%s: %v", s.Revision, err)
		}
	}
	bad := s3.Version(snapshot.Envoy, resource.ListenerType)
	f.Node(0).RejectVersion(resource.ListenerType, bad, "injected")
	srv.SetDefault(s3)
	if _, err := f.Wait(ctx, func(n *fleetsim.Node) (time.Time, bool) {
		if n.ID() == "delta-0" {
			_, nacks := n.Totals()
			return time.Time{}, nacks == 1
		}
		return n.RunsAt(s3)
	}); err != nil {
		t.Fatal(err)
	}
	if got := f.Node(0).AcceptedVersion(resource.ListenerType); got == bad {
		t.Errorf("delta-0 accepted the LDS version it NACKed")
	}
}

// ValidateDeep looks inside the typed configs: an HttpConnectionManager
// without stat_prefix, packed in a valid listener, is NACKed by a deep
// node and ACKed by a shallow one.
func TestValidateDeepNACKsTypedConfig(t *testing.T) {
	srv, addr := startXDS(t)
	bad := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "bad"})
	l := bad.Classes[snapshot.Envoy].Listeners[0]
	f := l.GetFilterChains()[0].GetFilters()[0]
	hcm := &hcmv3.HttpConnectionManager{}
	if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	hcm.StatPrefix = "" // min_len 1
	a, err := anypb.New(hcm)
	if err != nil {
		t.Fatal(err)
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	srv.SetDefault(bad)
	deep := fleetsim.ConnectT(t, addr, fleetsim.NodeOptions{ID: "deep", Types: fleetsim.ClassicTypes, Validate: fleetsim.ValidateDeep})
	shallow := fleetsim.ConnectT(t, addr, fleetsim.NodeOptions{ID: "shallow", Types: fleetsim.ClassicTypes})
	lds := bad.Version(snapshot.Envoy, resource.ListenerType)
	deadline := time.Now().Add(10 * time.Second)
	for deep.LastNACK() == "" || shallow.AcceptedVersion(resource.ListenerType) != lds {
		if time.Now().After(deadline) {
			t.Fatalf("deep: NACK %q; shallow: LDS %q, want %q", deep.LastNACK(), shallow.AcceptedVersion(resource.ListenerType), lds)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(deep.LastNACK(), "StatPrefix") || deep.AcceptedVersion(resource.ListenerType) == lds {
		t.Errorf("deep node: NACK %q, LDS accepted %q", deep.LastNACK(), deep.AcceptedVersion(resource.ListenerType))
	}
	if _, nacks := shallow.Totals(); nacks != 0 {
		t.Errorf("shallow node NACKed: %s", shallow.LastNACK())
	}
}

// A node counts the listener and cluster responses without any resource it
// was served (what the HA soak checks never happens): none while it runs a
// Set with listeners and clusters, some once it is served an empty one.
func TestEmptyResponses(t *testing.T) {
	srv, addr := startXDS(t)
	s1 := fleetsim.BuildSet(fleetsim.SetSpec{Revision: "r1"})
	srv.SetDefault(s1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := fleetsim.Start(ctx, 1, addr, fleetsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WaitRuns(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if got := f.Node(0).EmptyResponses(); got != 0 {
		t.Fatalf("%d empty responses while running r1", got)
	}
	srv.SetDefault(snapshot.New("empty", map[snapshot.Class]*snapshot.Resources{snapshot.Envoy: {}}))
	if _, err := f.Wait(ctx, func(n *fleetsim.Node) (time.Time, bool) {
		return time.Time{}, n.EmptyResponses() == 2 // listeners and clusters
	}); err != nil {
		t.Fatal(err)
	}
}
