package xds

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcxds "google.golang.org/grpc/xds"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// TestGRPCXDSClient runs gRPC-Go's own xDS client against the server: it
// resolves xds:///svc.test through LDS, RDS, CDS and EDS to a local health
// server, then rejects a cluster type it does not support, and is reset.
// (testenv/xdsclient has the full harness; this is the minimal check.)
func TestGRPCXDSClient(t *testing.T) {
	upstream := grpc.NewServer()
	healthpb.RegisterHealthServer(upstream, health.NewServer()) // "" is SERVING
	ulis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go upstream.Serve(ulis)
	defer upstream.Stop()
	port := uint32(ulis.Addr().(*net.TCPAddr).Port)

	s, addr := startServer(t)
	events, stop := s.Subscribe()
	defer stop()
	s1 := buildSet(spec{rev: "main@sha1:1", endpointPort: port, host: "svc.test"})
	s.SetDefault(s1)

	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": "passthrough:///%s", "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "grpc-node", "metadata": {"rollout-group": "canary"}}
	}`, addr)
	builder, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("xds:///svc.test", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(builder))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	check := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check through xDS: %v %v", resp, err)
		}
	}
	check()
	waitACK(t, s, s1, "grpc-node")
	info, _ := s.Node("grpc-node")
	if info.Class != snapshot.GRPC || info.Labels["rollout-group"] != "canary" || !strings.Contains(info.UserAgent, "gRPC Go") {
		t.Errorf("node info %+v", info)
	}
	for _, typ := range fourTypes { // gRPC has no scoped routes
		if !info.Types[typ].Requested || info.Types[typ].ACKed != s1.Version(snapshot.GRPC, typ) {
			t.Errorf("%s: %+v", typ, info.Types[typ])
		}
	}

	// s2's cluster is STATIC, which gRPC does not support: a real NACK.
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range s1.Classes {
		cp := *r
		cl := edsCluster("backend")
		cl.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
		cl.EdsClusterConfig = nil
		cp.Clusters = []*clusterv3.Cluster{cl}
		classes[c] = &cp
	}
	s2 := snapshot.New("main@sha1:2", classes)
	start := time.Now()
	s.SetDefault(s2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = s.WaitACK(ctx, []string{"grpc-node"}, s2)
	if err == nil || !strings.Contains(err.Error(), cds) || !strings.Contains(err.Error(), "unsupported cluster type") {
		t.Fatalf("WaitACK(s2) = %v", err)
	}
	eventually(t, "served s1 again", func() bool { return s.Served("grpc-node") == s1 })
	check()
	time.Sleep(measureWindow - time.Since(start))
	nacks := 0
	drain(events, func(ev Event) {
		if ev.Kind == NACK {
			nacks++
		}
	})
	t.Logf("gRPC client NACKed %d time(s) in %v", nacks, time.Since(start).Round(time.Millisecond))
	if nacks == 0 || nacks > 3 {
		t.Errorf("%d NACKs, want 1..3", nacks)
	}
	info, _ = s.Node("grpc-node")
	if !info.HasACKed(s1) {
		t.Errorf("node no longer on s1: %+v", info.Types)
	}
}
