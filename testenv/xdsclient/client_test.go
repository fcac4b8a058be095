package xdsclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"gitxds.dev/gitxds/testenv/fault"
	"gitxds.dev/gitxds/testenv/upstream"
)

const echo = "echo.example.com"

func newClient(t *testing.T, server, id string, md map[string]string) *Client {
	t.Helper()
	return NewT(t, Options{ServerAddr: server, NodeID: id, Metadata: md})
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestBootstrap(t *testing.T) {
	bs, err := Bootstrap(Options{ServerAddr: "127.0.0.1:18000", NodeID: "n1", Metadata: map[string]string{"rollout-group": "canary"}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(bs, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"node":{"id":"n1","metadata":{"rollout-group":"canary"}},"xds_servers":[{"channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"],"server_uri":"passthrough:///127.0.0.1:18000"}]}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Fatalf("bootstrap\n got %s\nwant %s", b, want)
	}
	for _, bad := range []Options{
		{NodeID: "n", Insecure: true},
		{ServerAddr: "x:1", Insecure: true},
		{ServerAddr: "x:1", NodeID: "n"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

// TestCallAndRouteChange is the basic loop: a client gets an API listener,
// calls through it, and follows a new snapshot routing elsewhere.
func TestCallAndRouteChange(t *testing.T) {
	a, b := upstream.StartT(t, "A"), upstream.StartT(t, "B")
	x := startXDSServer(t)
	x.set(t, "node-1", oneBackend(echo, "c1", a).snapshot(t, "1"))

	c := newClient(t, x.addr, "node-1", map[string]string{"rollout-group": "canary"})
	ctx := timeout(t, 10*time.Second)

	start := time.Now()
	id, err := c.Call(ctx, echo, map[string]string{"x-request-id": "r1"})
	if err != nil || id != "A" {
		t.Fatalf("Call = %q, %v", id, err)
	}
	t.Logf("first call (xDS LDS/RDS/CDS/EDS + connect) took %v", time.Since(start))

	// The request metadata reached the upstream; the node reached the server.
	if md, ok := a.FindMetadata("x-request-id", "r1"); !ok || md.Get(":authority")[0] != echo {
		t.Fatalf("upstream saw %v", md)
	}
	n := x.nodeSeen("node-1")
	if n == nil {
		t.Fatal("xDS server saw no node-1")
	}
	if got := n.GetMetadata().GetFields()["rollout-group"].GetStringValue(); got != "canary" {
		t.Fatalf("node metadata = %v", n.GetMetadata())
	}
	if n.GetUserAgentName() != "gRPC Go" {
		t.Fatalf("user agent = %q", n.GetUserAgentName())
	}

	// Route to another cluster on upstream B: a new snapshot with only c2.
	x.set(t, "node-1", oneBackend(echo, "c2", b).snapshot(t, "2"))
	start = time.Now()
	if err := c.WaitFor(ctx, echo, "B", nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("route change picked up after %v (WaitFor polls every 25ms)", time.Since(start))
	dist, err := c.Distribution(ctx, echo, 20, nil)
	if err != nil || dist["B"] != 20 {
		t.Fatalf("Distribution = %v, %v", dist, err)
	}
	if nacks := x.nacks(); len(nacks) != 0 {
		t.Fatalf("client NACKed: %v", nacks[0].req.GetErrorDetail())
	}
}

// TestSnapshotsPerNode checks that a node id only gets the snapshot set for
// it, and that a node without a snapshot gets nothing at all.
func TestSnapshotsPerNode(t *testing.T) {
	a, b := upstream.StartT(t, "A"), upstream.StartT(t, "B")
	x := startXDSServer(t)
	x.set(t, "x", oneBackend(echo, "c1", a).snapshot(t, "1"))
	x.set(t, "y", oneBackend(echo, "c1", b).snapshot(t, "1"))

	cx := newClient(t, x.addr, "x", nil)
	cy := newClient(t, x.addr, "y", nil)
	ctx := timeout(t, 10*time.Second)
	for range 5 {
		if id, err := cx.Call(ctx, echo, nil); err != nil || id != "A" {
			t.Fatalf("x: Call = %q, %v", id, err)
		}
		if id, err := cy.Call(ctx, echo, nil); err != nil || id != "B" {
			t.Fatalf("y: Call = %q, %v", id, err)
		}
	}

	// go-control-plane answers nothing to a node without snapshot, so the
	// call waits for the listener until its deadline.
	cz := newClient(t, x.addr, "z", nil)
	short := timeout(t, 300*time.Millisecond)
	if _, err := cz.Call(short, echo, nil); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("z: err = %v", err)
	}
	if x.nodeSeen("z") == nil {
		t.Fatal("z never reached the server")
	}
}

// TestWeightedSplit routes 3:1 between two clusters and checks Distribution.
func TestWeightedSplit(t *testing.T) {
	a, b := upstream.StartT(t, "A"), upstream.StartT(t, "B")
	x := startXDSServer(t)
	x.set(t, "n", service{
		listeners: []string{echo},
		domains:   []string{echo},
		weights:   map[string]uint32{"ca": 75, "cb": 25},
		backends:  map[string][]*upstream.Server{"ca": {a}, "cb": {b}},
	}.snapshot(t, "1"))
	c := newClient(t, x.addr, "n", nil)
	ctx := timeout(t, 10*time.Second)
	// Both clusters must be ready before counting; B is the rarer one.
	if err := c.WaitFor(ctx, echo, "B", nil); err != nil {
		t.Fatal(err)
	}
	dist, err := c.Distribution(ctx, echo, 400, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 75% of 400 = 300, sd ~ 8.7: 250..350 is far beyond 5 sigma.
	if dist["A"] < 250 || dist["A"] > 350 || dist["A"]+dist["B"] != 400 {
		t.Fatalf("distribution = %v", dist)
	}
	t.Logf("distribution 75/25 over 400 calls: %v", dist)
}

// TestHostPortTarget checks the "H:P" listener: gRPC matches virtual host
// domains against the full dial authority, port included.
func TestHostPortTarget(t *testing.T) {
	a := upstream.StartT(t, "A")
	x := startXDSServer(t)
	target := echo + ":8080"
	svc := oneBackend(target, "c1", a)
	svc.domains = []string{echo} // without the port: no virtual host matches
	x.set(t, "n", svc.snapshot(t, "1"))
	c := newClient(t, x.addr, "n", nil)
	ctx := timeout(t, 10*time.Second)
	_, err := c.Call(ctx, target, nil)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "VirtualHost") {
		t.Fatalf("with domain %q: err = %v", echo, err)
	}

	svc.domains = []string{echo, target}
	x.set(t, "n", svc.snapshot(t, "2"))
	if err := c.WaitFor(ctx, "xds:///"+target, "A", nil); err != nil {
		t.Fatal(err)
	}
}

// TestLocalityWithoutWeight: gRPC ignores a locality whose
// load_balancing_weight is unset, so a CLA without it has no endpoints.
func TestLocalityWithoutWeight(t *testing.T) {
	a := upstream.StartT(t, "A")
	x := startXDSServer(t)
	svc := oneBackend(echo, "c1", a)
	svc.noLocalityWeight = true
	x.set(t, "n", svc.snapshot(t, "1"))
	c := newClient(t, x.addr, "n", nil)
	ctx := timeout(t, 10*time.Second)
	_, err := c.Call(ctx, echo, nil)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v", err)
	}
	t.Logf("locality without weight: %v", err)
	if a.Calls() != 0 {
		t.Fatalf("upstream got %d calls", a.Calls())
	}
}

// TestXDSServerOutage cuts the client off the xDS server and brings it back
// as a new server with an empty cache: the client keeps serving the config it
// has all along, and takes the new server's config once it has one.
func TestXDSServerOutage(t *testing.T) {
	a, b := upstream.StartT(t, "A"), upstream.StartT(t, "B")
	x := startXDSServer(t)
	p, err := fault.NewProxy(x.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	x.set(t, "n", oneBackend(echo, "c1", a).snapshot(t, "1"))
	c := newClient(t, p.Addr(), "n", nil)
	ctx := timeout(t, 15*time.Second)
	if id, err := c.Call(ctx, echo, nil); err != nil || id != "A" {
		t.Fatalf("Call = %q, %v", id, err)
	}

	p.Cut()
	waitUntil(t, func() bool { return x.streams() == 0 })
	if dist, err := c.Distribution(ctx, echo, 20, nil); err != nil || dist["A"] != 20 {
		t.Fatalf("during outage: %v, %v", dist, err)
	}

	// A restarted server without state for the node answers nothing: the
	// client keeps its config.
	x2 := startXDSServer(t)
	p.SetTarget(x2.addr)
	start := time.Now()
	p.Restore()
	waitUntil(t, func() bool { return x2.nodeSeen("n") != nil })
	t.Logf("client reconnected %v after Restore", time.Since(start))
	if dist, err := c.Distribution(ctx, echo, 20, nil); err != nil || dist["A"] != 20 {
		t.Fatalf("on a server without snapshot: %v, %v", dist, err)
	}

	x2.set(t, "n", oneBackend(echo, "c2", b).snapshot(t, "2"))
	start = time.Now()
	if err := c.WaitFor(ctx, echo, "B", nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("new server's config picked up in %v (WaitFor polls every 25ms)", time.Since(start))
}

// TestXDSServerPartition holds the ADS stream (no reset): the client notices
// nothing, keeps its config, and gets what changed once traffic flows again.
func TestXDSServerPartition(t *testing.T) {
	a, b := upstream.StartT(t, "A"), upstream.StartT(t, "B")
	x := startXDSServer(t)
	p, err := fault.NewProxy(x.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	x.set(t, "n", oneBackend(echo, "c1", a).snapshot(t, "1"))
	c := newClient(t, p.Addr(), "n", nil)
	ctx := timeout(t, 10*time.Second)
	if id, err := c.Call(ctx, echo, nil); err != nil || id != "A" {
		t.Fatalf("Call = %q, %v", id, err)
	}
	p.Blackhole()
	x.set(t, "n", oneBackend(echo, "c2", b).snapshot(t, "2"))
	time.Sleep(200 * time.Millisecond)
	if dist, err := c.Distribution(ctx, echo, 20, nil); err != nil || dist["A"] != 20 {
		t.Fatalf("during partition: %v, %v", dist, err)
	}
	start := time.Now()
	p.Restore()
	if err := c.WaitFor(ctx, echo, "B", nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("config held by the partition arrived %v after Restore (WaitFor polls every 25ms)", time.Since(start))
}

// TestADSCacheSubsets pins a go-control-plane behavior that matters for
// proxyless nodes: a SnapshotCache made with ads=true answers a request that
// names resources only when the names cover every resource of that type in
// the snapshot. A gRPC client asks for the one listener it dials, so with two
// listeners in the snapshot it gets no answer at all; with ads=false it gets
// the listener it asked for.
func TestADSCacheSubsets(t *testing.T) {
	for _, ads := range []bool{true, false} {
		a := upstream.StartT(t, "A")
		x := startXDSServerADS(t, ads)
		svc := oneBackend(echo, "c1", a)
		svc.listeners = []string{echo, echo + ":8080"}
		svc.domains = []string{echo, echo + ":8080"}
		x.set(t, "n", svc.snapshot(t, "1"))
		c := newClient(t, x.addr, "n", nil)
		id, err := c.Call(timeout(t, 500*time.Millisecond), echo, nil)
		switch {
		case ads && status.Code(err) != codes.DeadlineExceeded:
			t.Errorf("ads=true: Call = %q, %v; want no answer (DeadlineExceeded)", id, err)
		case !ads && (err != nil || id != "A"):
			t.Errorf("ads=false: Call = %q, %v; want A", id, err)
		}
	}
}

// TestListenerRemoved: a snapshot without the listener a client watches.
// With ads=true the cache does not answer (see TestADSCacheSubsets) and the
// client keeps the old listener; with ads=false the state-of-the-world answer
// deletes it on the client and calls fail.
func TestListenerRemoved(t *testing.T) {
	for _, ads := range []bool{true, false} {
		a := upstream.StartT(t, "A")
		x := startXDSServerADS(t, ads)
		x.set(t, "n", oneBackend(echo, "c1", a).snapshot(t, "1"))
		c := newClient(t, x.addr, "n", nil)
		ctx := timeout(t, 10*time.Second)
		if id, err := c.Call(ctx, echo, nil); err != nil || id != "A" {
			t.Fatalf("Call = %q, %v", id, err)
		}
		other := oneBackend("other.example.com", "c1", a)
		other.domains = []string{echo, "other.example.com"} // the old listener's route would still match
		x.set(t, "n", other.snapshot(t, "2"))
		var err error
		for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err = c.Call(ctx, echo, nil); err != nil {
				break
			}
		}
		switch {
		case ads && err != nil:
			t.Errorf("ads=true: err = %v, want the old listener kept", err)
		case !ads && (status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "removed")):
			t.Errorf("ads=false: err = %v, want Unavailable: resource removed", err)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
	}
}

func TestFleet(t *testing.T) {
	a, b := upstream.StartT(t, "A"), upstream.StartT(t, "B")
	x := startXDSServer(t)
	members := append(Members("canary", 2, map[string]string{"rollout-group": "canary"}), Members("main", 3, nil)...)
	f := NewFleetT(t, Options{ServerAddr: x.addr}, members)
	if f.Len() != 5 || f.Client("canary-1").Metadata()["rollout-group"] != "canary" || f.Client("main-2") == nil {
		t.Fatalf("fleet = %d clients", f.Len())
	}
	if _, err := NewFleet(Options{ServerAddr: x.addr, Insecure: true}, append(Members("d", 1, nil), Members("d", 1, nil)...)); err == nil {
		t.Fatal("duplicate ids accepted")
	}

	for _, m := range members {
		up := a
		if m.Metadata["rollout-group"] == "canary" {
			up = b
		}
		x.set(t, m.NodeID, oneBackend(echo, "c1", up).snapshot(t, "1"))
	}
	if err := f.Connect(echo); err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t, 10*time.Second)
	got, err := f.CallAll(ctx, echo, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"canary-0": "B", "canary-1": "B", "main-0": "A", "main-1": "A", "main-2": "A"}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("CallAll = %v", got)
		}
	}
	for _, m := range members {
		x.set(t, m.NodeID, oneBackend(echo, "c2", b).snapshot(t, "2"))
	}
	if err := f.WaitAll(ctx, echo, "B", nil); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCallsAndClose calls from many goroutines on shared and own
// conns, then checks that a closed client refuses to work.
func TestConcurrentCallsAndClose(t *testing.T) {
	a := upstream.StartT(t, "A")
	x := startXDSServer(t)
	x.set(t, "n", oneBackend(echo, "c1", a).snapshot(t, "1"))
	c, err := New(Options{ServerAddr: x.addr, NodeID: "n", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t, 10*time.Second)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			d, err := c.Distribution(ctx, echo, 20, map[string]string{"x-n": "1"})
			if err == nil && d["A"] != 20 {
				err = fmt.Errorf("distribution %v", d)
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if a.Calls() != 16*20 {
		t.Fatalf("upstream calls = %d", a.Calls())
	}

	own, err := c.Dial("xds:///" + echo)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	res, err := testgrpc.NewTestServiceClient(own).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil || res.GetServerId() != "A" {
		t.Fatalf("own conn: %v, %v", res, err)
	}
	r, err := c.Invoke(ctx, echo, nil)
	if err != nil || len(r.Header.Get(upstream.HeaderUpstream)) != 1 || r.Header.Get(upstream.HeaderUpstream)[0] != "A" {
		t.Fatalf("Invoke = %+v, %v", r, err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, echo, nil); err == nil {
		t.Fatal("Call after Close succeeded")
	}
	if _, err := c.Dial(echo); err == nil {
		t.Fatal("Dial after Close succeeded")
	}
}
