package translate

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// TestEnvoyAcceptsResources serves the Envoy class of the golden cases
// without TLS to a real Envoy over ADS and waits until Envoy ACKs the
// version of every type. It runs when ENVOY_BIN names an Envoy binary or
// one named envoy is on PATH, and is skipped otherwise.
func TestEnvoyAcceptsResources(t *testing.T) {
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("envoy")
	}
	if bin == "" {
		t.Skip("no Envoy: set ENVOY_BIN or put envoy on PATH")
	}
	// Cases whose certificate files would not exist on this host are left
	// out; ports are moved above 1024 so that Envoy can bind them.
	for i, name := range []string{"http-basic", "merge-ports", "matches", "actions", "policies", "clusters", "grpc-hosts", "access-logs"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name+".in.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			x, err := decodeIR(data)
			if err != nil {
				t.Fatal(err)
			}
			for gi := range x.Gateways {
				for li := range x.Gateways[gi].Listeners {
					l := &x.Gateways[gi].Listeners[li]
					l.Port = 20000 + uint32(i)*100 + l.Port%100
				}
			}
			set, err := Translate(x, testRevision)
			if err != nil {
				t.Fatal(err)
			}
			runEnvoy(t, bin, set)
			if name == "actions" {
				// Scoped routes: the scope is the host of :authority
				// and the listener port (translate.go); a client
				// cannot pick another port's scope with the header.
				port := 20000 + uint32(i)*100 + 80
				for _, p := range []struct {
					host, portHeader string
					want             int
				}{
					{"www.example.com", "", 410},
					{fmt.Sprintf("www.example.com:%d", port), "", 410},
					{"www.example.com", "81", 410},
					{"nobody.example.com", "", 404},
				} {
					if got := envoyGet(t, port, p.host, "/gone", p.portHeader); got != p.want {
						t.Errorf("GET /gone Host %s (x-gitxds-listener-port %q): %d, want %d", p.host, p.portHeader, got, p.want)
					}
				}
			}
		})
	}
}

// envoyGet sends GET path to Envoy's listener on port with a Host header,
// retrying while the listener is not up yet, and returns the status.
func envoyGet(t *testing.T, port uint32, host, path, portHeader string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if portHeader != "" {
			req.Header.Set(listenerPortHeader, portHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runEnvoy(t *testing.T, bin string, set *snapshot.Set) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	snap, err := set.CacheSnapshot(snapshot.Envoy)
	if err != nil {
		t.Fatal(err)
	}
	const nodeID = "envoy-e2e"
	sc := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	if err := sc.SetSnapshot(ctx, nodeID, snap); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	var nacks []string
	done := make(chan struct{})
	cb := server.CallbackFuncs{
		StreamRequestFunc: func(_ int64, req *discoverygrpc.DiscoveryRequest) error {
			mu.Lock()
			defer mu.Unlock()
			if req.GetErrorDetail() != nil {
				nacks = append(nacks, req.GetTypeUrl()+": "+req.GetErrorDetail().GetMessage())
			} else if req.GetVersionInfo() == set.Version(snapshot.Envoy, req.GetTypeUrl()) {
				acked[req.GetTypeUrl()] = true
			}
			all := true
			for _, typ := range snapshot.TypeURLs {
				// A type without resources is never asked for (RDS, EDS).
				if len(set.Classes[snapshot.Envoy].ByType(typ)) > 0 && !acked[typ] {
					all = false
				}
			}
			if all && len(nacks) == 0 {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			return nil
		},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, server.NewServer(ctx, sc, cb))
	go gs.Serve(lis)
	defer gs.Stop()

	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(bootstrap, []byte(envoyBootstrap(nodeID, lis.Addr().(*net.TCPAddr).Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-c", bootstrap, "--disable-hot-restart", "-l", "warning")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()

	select {
	case <-done:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("Envoy did not ACK every type (acked %v, NACKs %v); Envoy log:\n%s", acked, nacks, logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(nacks) > 0 {
		t.Fatalf("Envoy NACKed: %v", nacks)
	}
}

func envoyBootstrap(nodeID string, xdsPort int) string {
	return fmt.Sprintf(`node: {id: %s, cluster: gitxds-test}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds}}]
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
`, nodeID, xdsPort)
}
