package e2e

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	grpcstatus "google.golang.org/grpc/status"

	"gitxds.dev/gitxds/reconciler/credentials"
	"gitxds.dev/gitxds/reconciler/credentials/testcerts"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/stack"
)

// connectNode connects an Envoy-like node (testenv/fleetsim) over mutual
// TLS on a connection of its own: it subscribes to CDS and ACKs every
// response, or NACKs every one. The error is that of a stream that could
// not open.
func connectNode(t *testing.T, addr string, cfg *tls.Config, id string, labels map[string]string, nack bool) (*fleetsim.Node, error) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(grpccreds.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	o := fleetsim.NodeOptions{ID: id, Labels: labels, Types: []string{resource.ClusterType}, Validate: fleetsim.ValidateNone}
	if nack {
		o.Reject = func(string, string) string { return "spoofed NACK" }
	}
	n, err := fleetsim.Connect(context.Background(), conn, o)
	if err == nil {
		t.Cleanup(n.Close)
	}
	return n, err
}

// refused waits for the node's stream (or its opening, err) to end with
// code.
func refused(t *testing.T, what string, n *fleetsim.Node, err error, code codes.Code) {
	t.Helper()
	if err == nil {
		select {
		case <-n.Done():
			err = n.Err()
		case <-time.After(10 * time.Second):
			t.Errorf("%s: the stream was served", what)
			return
		}
	}
	if grpcstatus.Code(err) != code {
		t.Errorf("%s: stream ended with %v, want %v", what, err, code)
	}
}

// TestSpoofedNodesCannotVetoRollout: with mutual TLS and node identities
// bound to certificates (the rollout-group label too), nodes that spoof a
// canary node's id or claim the canary label cannot join the rollout: they
// are refused, or keep the label of their certificate, and a rollout
// completes although every spoofer NACKs whatever it gets.
func TestSpoofedNodesCannotVetoRollout(t *testing.T) {
	pki, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := credentials.ServerTLS(credentials.TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert := func(san string) *tls.Config {
		c, err := pki.ClientTLSFor(san)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	node := func(group, id string) string { return "spiffe://gitxds.test/rollout-group/" + group + "/node/" + id }
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{
		Files:        rolloutRepo(ups, "a", policy("3s", "200ms", "")),
		Upstreams:    ups,
		Interval:     100 * time.Millisecond,
		XDSTLS:       srvTLS,
		NodeIdentity: &xds.NodeIdentity{Pattern: "spiffe://gitxds.test/rollout-group/{rollout-group}/node/{id}"},
		Log:          testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	head := "main@sha1:" + must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, head))
	addr := s.Daemon.XDSAddr

	// The real nodes: canary-1, and stable-1, which claims the canary label
	// in its metadata but whose certificate says stable.
	must[*fleetsim.Node](t)(connectNode(t, addr, cert(node("canary", "canary-1")), "canary-1", map[string]string{"rollout-group": "canary"}, false))
	must[*fleetsim.Node](t)(connectNode(t, addr, cert(node("stable", "stable-1")), "stable-1", map[string]string{"rollout-group": "canary"}, false))
	waitNodes(t, s, "canary-1", "stable-1")

	// The spoofers, each NACKing whatever it would get.
	web := cert("spiffe://gitxds.test/workload/web") // a certificate of the CA for something else
	for _, sp := range []struct {
		what string
		cfg  *tls.Config
		id   string
		code codes.Code
	}{
		{"canary-1's id with another workload's certificate", web, "canary-1", codes.PermissionDenied},
		{"the canary label with another workload's certificate", web, "web", codes.PermissionDenied},
		{"canary-1's id with stable-1's certificate", cert(node("stable", "stable-1")), "canary-1", codes.PermissionDenied},
		{"canary-1's id, connected already, from another identity", cert(node("stable", "canary-1")), "canary-1", codes.PermissionDenied},
		{"no client certificate", pki.ClientTLS(false, false), "canary-2", codes.Unavailable},
		{"a certificate of another CA", pki.ClientTLS(false, true), "canary-2", codes.Unavailable},
	} {
		n, err := connectNode(t, addr, sp.cfg, sp.id, map[string]string{"rollout-group": "canary"}, true)
		refused(t, sp.what, n, err, sp.code)
	}

	rev := must[string](t)(s.Commit("route to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	st := must[status.Status](t)(s.WaitStatus(30*time.Second, "rollout done", func(st status.Status) bool {
		ro, ok := rolloutOf(st, rev)
		return ok && (st.LastAppliedRevision == rev || ro.Phase == rollout.Failed)
	}))
	ro, _ := rolloutOf(st, rev)
	if ro.Phase != rollout.Succeeded || st.LastAppliedRevision != rev {
		t.Fatalf("rollout %s: %s (%s); applied %s", rev, ro.Phase, ro.Message, st.LastAppliedRevision)
	}
	if len(ro.Stages) != 2 || !slices.Equal(ro.Stages[0].Nodes, []string{"canary-1"}) {
		t.Errorf("stages %+v; want the canary stage to hold canary-1 only", ro.Stages)
	}
	if n, ok := s.Daemon.XDS.Node("stable-1"); !ok || n.Labels["rollout-group"] != "stable" {
		t.Errorf("stable-1 labels %v; want those of its certificate", n.Labels)
	}
	if nodes := s.Daemon.XDS.Nodes(); len(nodes) != 2 {
		var got []string
		for _, n := range nodes {
			got = append(got, n.ID)
		}
		t.Errorf("connected nodes %v; want canary-1 and stable-1 only", got)
	}
}

func waitNodes(t *testing.T, s *stack.Stack, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, id := range ids {
			if _, ok := s.Daemon.XDS.Node(id); !ok {
				all = false
			}
		}
		if all {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nodes %v did not connect", ids)
}
