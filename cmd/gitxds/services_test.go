package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/testenv/kubeapi"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/syncbuf"
	"gitxds.dev/gitxds/testenv/upstream"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// TestServeDiscoverServicesFlags: with --discover-services (the default)
// and a kubeconfig (--kubeconfig or $KUBECONFIG) serve discovers Service
// endpoints; with --discover-services=false, or without any Kubernetes
// access, Services resolve by DNS (no client).
func TestServeDiscoverServicesFlags(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := serveFlags{repo: dir, path: "overlays/dev", discoverServices: true, clusterDomain: "k8s.internal"}
	for _, c := range []struct {
		name string
		f    func(*serveFlags)
		kube bool
	}{
		{"--kubeconfig", func(f *serveFlags) { f.kubeconfig = kc }, true},
		{"$KUBECONFIG", func(f *serveFlags) { f.environ = []string{"KUBECONFIG=" + kc} }, true},
		{"--discover-services=false", func(f *serveFlags) { f.kubeconfig, f.discoverServices = kc, false }, false},
		{"no Kubernetes access", func(*serveFlags) {}, false},
	} {
		f := base
		c.f(&f)
		cfg, err := daemonConfig(f, log)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (cfg.Kube != nil) != c.kube || cfg.ClusterDomain != "k8s.internal" {
			t.Errorf("%s: Kube set %v (want %v), ClusterDomain %q", c.name, cfg.Kube != nil, c.kube, cfg.ClusterDomain)
		}
	}
}

// TestServeKubeconfigServiceEndpoints runs `gitxds serve --kubeconfig` as
// a process against a real API server: a standard HTTPRoute to Service
// web is served to a real gRPC-Go xDS client from the Service's
// EndpointSlices, and an endpoint added in the API server is answering
// within a second, with no commit.
func TestServeKubeconfigServiceEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	srv := kubeapi.Start(t)
	cs, err := srv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := srv.Namespace(t, "shop")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := upstream.StartT(t, "a"), upstream.StartT(t, "b")
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 8080}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Kubernetes refuses loopback endpoints; the slices name TEST-NET-1
	// addresses (RFC 5737) that the client's dialer sends to 127.0.0.1.
	slice := func(u *upstream.Server, i byte) *discoveryv1.EndpointSlice {
		port := int32(u.Port())
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-" + u.Name(), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("grpc"), Port: &port}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{netip.AddrFrom4([4]byte{192, 0, 2, i}).String()}}},
		}
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice(a, 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	files := stack.EchoRepo("127.0.0.1:1", "127.0.0.1:2")
	files["platform/namespaces.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n"
	files["teams/"+ns+"/kustomization.yaml"] = "namespace: " + ns + "\nresources: [routes.yaml]\n"
	files["teams/"+ns+"/routes.yaml"] = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge, namespace: platform}]
  hostnames: [web.example.com]
  rules:
  - backendRefs: [{name: web, port: 8080}]
`
	files["overlays/dev/kustomization.yaml"] = "resources: [../../platform, ../../teams/" + ns + "]\n"
	s, err := stack.Start(context.Background(), stack.Options{Files: files, Interval: time.Hour})
	if err != nil {
		t.Skip("needs the git CLI:", err)
	}
	defer s.Close()
	s.StopDaemon()
	dir := t.TempDir()
	xdsAddr, admin := stack.FreeAddr(), stack.FreeAddr()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(os.Environ(), "GITXDS_TEST_HELPER=1", "KUBERNETES_SERVICE_HOST=",
		fmt.Sprintf("GITXDS_TEST_ARGS=serve --kubeconfig %s --repo %s --path %s --interval 1h --xds-address %s --admin-address %s --state-dir %s",
			srv.Kubeconfig, s.Repo.URL(), s.Opts.Overlay, xdsAddr, admin, filepath.Join(dir, "state")))
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if !waitHTTP("http://"+admin+"/readyz", 30*time.Second) {
		t.Fatalf("not ready; stderr:\n%s", stderr.String())
	}
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !netip.MustParsePrefix("192.0.2.0/24").Contains(ap.Addr()) {
			return nil, fmt.Errorf("test dialer: %s is not an upstream's TEST-NET-1 address", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String())
	}
	c, err := xdsclient.New(xdsclient.Options{ServerAddr: xdsAddr, NodeID: "node-1", Insecure: true,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dialer)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := c.WaitFor(wctx, "web.example.com", "a", nil); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, stderr.String())
	}
	start := time.Now()
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice(b, 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wctx2, wcancel2 := context.WithTimeout(ctx, time.Second)
	defer wcancel2()
	if err := c.WaitFor(wctx2, "web.example.com", "b", nil); err != nil {
		t.Fatalf("the added endpoint is not answering a second later: %v", err)
	}
	t.Logf("endpoint added to answering: %s", time.Since(start))
}

func ptrTo[T any](v T) *T { return &v }
