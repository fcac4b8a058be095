package translate

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// TestGRPCClientAcceptsResources serves the gRPC class of a translation
// from a go-control-plane ADS server to gRPC-Go's real xDS client, which
// NACKs what it does not accept, and makes RPCs through it: to an EDS
// cluster (both through listener "H" and "H:P"), to a LOGICAL_DNS cluster,
// through a PathPrefix turned into path + prefix (to a RING_HASH cluster
// with a header hash policy), into a direct response,
// a redirect and the invalid backend share, all of which gRPC must fail
// with UNAVAILABLE.
func TestGRPCClientAcceptsResources(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gRPC servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Two backends told apart by their health status.
	backendPort := startHealthServer(t, healthpb.HealthCheckResponse_SERVING)
	dnsPort := startHealthServer(t, healthpb.HealthCheckResponse_NOT_SERVING)

	owner := ir.ObjectRef{Kind: "GRPCRoute", Namespace: "team-a", Name: "health"}
	x := &ir.IR{
		Gateways: []ir.Gateway{{
			Namespace: "platform", Name: "internal",
			Listeners: []ir.Listener{{
				Name: "grpc", Port: 50051, Protocol: ir.HTTP,
				VirtualHosts: []ir.VirtualHost{{
					Hostname: "health.test",
					Routes: []ir.Route{
						{
							Name: "team-a/health/rule/0/match/0", Owner: owner,
							Match:          ir.Match{PathType: ir.PathPrefix, Path: "/", Headers: []ir.StringMatch{{Name: "x-route", Type: ir.MatchExact, Value: "blocked"}}},
							DirectResponse: &ir.DirectResponse{Status: 503},
						},
						{
							Name: "team-a/health/rule/0/match/1", Owner: owner,
							Match:    ir.Match{PathType: ir.PathPrefix, Path: "/", Headers: []ir.StringMatch{{Name: "x-route", Type: ir.MatchExact, Value: "redirect"}}},
							Redirect: &ir.Redirect{Hostname: "elsewhere.test"},
						},
						{
							Name: "team-a/health/rule/1/match/0", Owner: owner,
							Match:    ir.Match{PathType: ir.PathPrefix, Path: "/", Headers: []ir.StringMatch{{Name: "x-route", Type: ir.MatchRegex, Value: "d.s"}}},
							Backends: []ir.WeightedBackend{{Cluster: "team-a/health-dns", Weight: 1}},
						},
						{
							// All but one in 2^32-1 requests to the invalid share.
							Name: "team-a/health/rule/2/match/0", Owner: owner,
							Match:         ir.Match{PathType: ir.PathPrefix, Path: "/", Headers: []ir.StringMatch{{Name: "x-route", Type: ir.MatchExact, Value: "invalid"}}},
							Backends:      []ir.WeightedBackend{{Cluster: "team-a/health", Weight: 1}},
							InvalidWeight: 1<<32 - 2,
						},
						{
							Name: "team-a/health/rule/3/match/0", Owner: owner,
							Match:    ir.Match{PathType: ir.PathPrefix, Path: "/grpc.health.v1.Health"},
							Backends: []ir.WeightedBackend{{Cluster: "team-a/health", Weight: 1}},
							Timeouts: ir.Timeouts{Request: 10 * time.Second},
							Retry:    &ir.Retry{Attempts: 2, RetryOn: []string{"unavailable", "5xx"}},
							Hash:     &ir.HashPolicy{Header: "x-user"},
						},
					},
				}},
			}},
		}},
		Clusters: []ir.Cluster{
			{
				Name: "team-a/health", Owner: ir.ObjectRef{Kind: "Backend", Namespace: "team-a", Name: "health"},
				Endpoints:        []ir.Endpoint{{Address: "127.0.0.1", Port: backendPort}},
				HTTP2:            true,
				CircuitBreaker:   &ir.CircuitBreaker{MaxParallelRequests: 100},
				OutlierDetection: &ir.OutlierDetection{Consecutive5xx: 5, Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionPercent: 50},
				// Consistent hashing by header: RING_HASH (gRFC A42).
				LoadBalancer: &ir.LoadBalancer{Type: ir.LBConsistentHash, Hash: &ir.HashPolicy{Header: "x-user"}},
			},
			{
				Name: "team-a/health-dns", Owner: ir.ObjectRef{Kind: "Backend", Namespace: "team-a", Name: "health-dns"},
				Endpoints: []ir.Endpoint{{Address: "localhost", Port: dnsPort}},
				DNS:       true,
				HTTP2:     true,
			},
		},
	}
	set, err := Translate(x, testRevision)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := set.CacheSnapshot(snapshot.GRPC)
	if err != nil {
		t.Fatal(err)
	}

	const nodeID = "grpc-e2e"
	// Not in ADS mode: gRPC asks for a subset of the snapshot's resources,
	// which an ADS-mode SnapshotCache never answers (docs/architecture.md §8).
	sc := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	if err := sc.SetSnapshot(ctx, nodeID, snap); err != nil {
		t.Fatal(err)
	}
	nacks := make(chan string, 16)
	xdsAddr := startADS(t, ctx, sc, nacks)

	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": %q}
	}`, xdsAddr, nodeID)
	rb, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}

	for _, target := range []string{"xds:///health.test", "xds:///health.test:50051"} {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(rb))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := healthpb.NewHealthClient(conn)
		check := func(route string) (*healthpb.HealthCheckResponse, error) {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			if route != "" {
				rctx = metadata.AppendToOutgoingContext(rctx, "x-route", route)
			}
			return client.Check(rctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		}
		for route, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
			"":    healthpb.HealthCheckResponse_SERVING,     // EDS cluster
			"dns": healthpb.HealthCheckResponse_NOT_SERVING, // LOGICAL_DNS cluster
		} {
			resp, err := check(route)
			if err != nil {
				t.Fatalf("%s (x-route %q): %v", target, route, err)
			}
			if resp.GetStatus() != want {
				t.Errorf("%s (x-route %q): status %v, want %v", target, route, resp.GetStatus(), want)
			}
		}
		// A direct response, a redirect and the invalid backend share go
		// to a cluster without endpoints (gRFC A28 allows only route
		// actions): the matching RPCs fail, and do not fall through to
		// the later catch-all route. Fail fast: with WaitForReady an RPC
		// to a cluster without endpoints waits for its deadline.
		for _, route := range []string{"blocked", "redirect", "invalid"} {
			rctx, rcancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "x-route", route), 10*time.Second)
			_, err = client.Check(rctx, &healthpb.HealthCheckRequest{})
			rcancel()
			if status.Code(err) != codes.Unavailable {
				t.Errorf("%s: x-route %q gave %v, want UNAVAILABLE", target, route, err)
			}
		}
	}
	select {
	case n := <-nacks:
		t.Errorf("gRPC NACKed: %s", n)
	default:
	}
}

// startHealthServer serves the health service with the given status on
// a port of 127.0.0.1.
func startHealthServer(t *testing.T, st healthpb.HealthCheckResponse_ServingStatus) uint32 {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	hs.SetServingStatus("", st)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return uint32(lis.Addr().(*net.TCPAddr).Port)
}

func startADS(t *testing.T, ctx context.Context, sc cache.SnapshotCache, nacks chan<- string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := server.CallbackFuncs{
		StreamRequestFunc: func(_ int64, req *discoverygrpc.DiscoveryRequest) error {
			if req.GetErrorDetail() != nil {
				select {
				case nacks <- req.GetTypeUrl() + ": " + req.GetErrorDetail().GetMessage():
				default:
				}
			}
			return nil
		},
	}
	srv := server.NewServer(ctx, sc, cb)
	gs := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}
