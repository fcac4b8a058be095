package translate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/envoy"
)

// TestEnvoyAcceptsResources serves the Envoy class of the golden cases
// without TLS to a real Envoy through gitxds's xDS server and waits until
// Envoy ACKs the version of every type. It runs when ENVOY_BIN names an
// Envoy binary or one named envoy is on PATH, and is skipped otherwise;
// testenv/envoy drives Envoy through gitxds with commits.
func TestEnvoyAcceptsResources(t *testing.T) {
	bin := envoy.Require(t)
	// Cases whose certificate files would not exist on this host are left
	// out; ports are moved above 1024 so that Envoy can bind them.
	for i, name := range []string{"http-basic", "merge-ports", "matches", "actions", "policies", "clusters", "grpc-hosts", "access-logs", "global-ratelimit", "load-balancing", "session-persistence", "services", "patches"} {
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

// runEnvoy serves set's Envoy class to a real Envoy through gitxds's own
// xDS server and waits until Envoy has ACKed every type it asked for
// (WaitACK fails at once on a NACK, with Envoy's message). Envoy and the
// server keep running until the test ends, so that it can send requests.
func runEnvoy(t *testing.T, bin string, set *snapshot.Set) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	srv := xds.New(xds.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.SetDefault(set)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, lis) }()
	t.Cleanup(func() { stop(); <-served })

	const nodeID = "envoy-e2e"
	p, err := envoy.Start(bin, envoy.Options{XDSAddr: lis.Addr().String(), NodeID: nodeID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	for {
		if _, ok := srv.Node(nodeID); ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Envoy never connected; Envoy log:\n%s", p.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := srv.WaitACK(wctx, []string{nodeID}, set); err != nil {
		info, _ := srv.Node(nodeID)
		t.Fatalf("%v; types %+v; Envoy log:\n%s", err, info.Types, p.Logs())
	}
}
