package envoy_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/envoy"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/upstream"
)

// The test's configuration: a Gateway whose first revision has one plain
// HTTP port with a catch-all route (one RouteConfiguration for the port,
// no scoped routes), and whose second revision adds a port of exact
// hostnames (scoped routes) and an HTTPS port.

const gatewayHead = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: platform
  annotations: {gitxds.dev/certs-dir: %q}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: plain, port: %d, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
`

const gatewayMore = `  - {name: scoped, port: %d, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - name: secure
    port: %d
    protocol: HTTPS
    hostname: secure.example.com
    tls: {mode: Terminate, certificateRefs: [{name: secure}]}
    allowedRoutes: {namespaces: {from: All}}
`

func backendYAML(name string, u *upstream.HTTPServer) string {
	return fmt.Sprintf("apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: %s}\nspec:\n  endpoints: [{ip: {address: 127.0.0.1, port: %d}}]\n---\n", name, u.Port())
}

func route(name, section, host, backend, extra string) string {
	hosts := ""
	if host != "" {
		hosts = "  hostnames: [" + host + "]\n"
	}
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s}
spec:
  parentRefs: [{name: edge, namespace: platform, sectionName: %s}]
%s  rules:
  - backendRefs: [{group: gitxds.dev, kind: Backend, name: %s}]
%s---
`, name, section, hosts, backend, extra)
}

// scopedRoutes: echo (headers with %), slow (300 ms timeout), flaky
// (retried on 503), and the HTTPS one.
func scopedRoutes() string {
	return route("echo", "scoped", "echo.example.com", "a", `    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: x-discount, value: "50%off"}]
        set: [{name: x-literal, value: "%REQ(host)%"}]
`) + route("slow", "scoped", "slow.example.com", "slow", "    timeouts: {request: 300ms}\n") +
		route("flaky", "scoped", "flaky.example.com", "flaky", "") +
		route("secure", "secure", "secure.example.com", "a", "") + `apiVersion: gitxds.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: flaky-retry}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: flaky}]
  retry:
    numRetries: 2
    retryOn: {httpStatusCodes: [503]}
    perRetry: {backOff: {baseInterval: 10ms, maxInterval: 50ms}}
---
`
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(stack.FreeAddr())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

// TestEnvoyThroughGitxds drives a real Envoy through gitxds's own xDS
// server (the daemon `gitxds serve` runs) with commits: a scoped listener
// added after Envoy started, header values with %, a route timeout,
// retries, HTTPS, a cluster-only change, and a hostname added and removed
// under a kept-alive connection. It runs when ENVOY_BIN names an Envoy
// binary or envoy is on PATH: `go -C tools tool task -d .. test-envoy`.
func TestEnvoyThroughGitxds(t *testing.T) {
	envoy.Require(t)
	sc := newScenario(t)
	const drain = 5 * time.Second
	s := sc.start(t, drain)
	p := envoy.StartT(t, envoy.Options{XDSAddr: s.Daemon.XDSAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitACK(ctx, t, s, p.NodeID)
	ups, plain, scoped, secure := sc.ups, sc.plain, sc.scoped, sc.secure
	expect(t, plain, "anything.example.com", "/", 200, "A")

	// A scoped listener added after start-up (on Envoy 1.31-1.37 the
	// first scoped listener added after start-up never gets its scopes:
	// gitxds must give those versions one route configuration per port).
	applied(t, s, commit(t, s, "scoped and TLS ports", sc.scopedFiles()))
	waitACK(ctx, t, s, p.NodeID)
	t.Run("scoped listener added after start-up", func(t *testing.T) {
		expect(t, scoped, "echo.example.com", "/", 200, "A")
		expect(t, scoped, "nobody.example.com", "/", 404, "")
	})

	t.Run("header values with %", func(t *testing.T) {
		ups["A"].Reset()
		expect(t, scoped, "echo.example.com", "/", 200, "A")
		r := ups["A"].LastRequest()
		if got := r.Header.Get("x-discount"); got != "50%off" {
			t.Errorf("x-discount reached the upstream as %q, want 50%%off", got)
		}
		if got := r.Header.Get("x-literal"); got != "%REQ(host)%" {
			t.Errorf("x-literal reached the upstream as %q, want %%REQ(host)%% verbatim", got)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		ups["Slow"].SetDelay(2 * time.Second)
		defer ups["Slow"].SetDelay(0)
		start := time.Now()
		expect(t, scoped, "slow.example.com", "/", http.StatusGatewayTimeout, "")
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("504 after %s, want ~300ms", took)
		}
	})

	t.Run("retries", func(t *testing.T) {
		f := ups["Flaky"]
		expect(t, scoped, "flaky.example.com", "/", 200, "Flaky")
		f.Reset()
		f.SetFailure(http.StatusServiceUnavailable, 2)
		expect(t, scoped, "flaky.example.com", "/", 200, "Flaky")
		if c := f.Calls(); c != 3 {
			t.Errorf("upstream saw %d attempts, want 3 (1 + 2 retries)", c)
		}
		f.Reset()
		f.SetFailure(http.StatusServiceUnavailable, 3)
		expect(t, scoped, "flaky.example.com", "/", http.StatusServiceUnavailable, "")
		f.Reset()
	})

	t.Run("HTTPS", func(t *testing.T) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: sc.caPool, ServerName: "secure.example.com"},
		}}
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/", secure))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 && resp.Header.Get(upstream.HTTPHeaderUpstream) == "A" {
					return
				}
				err = fmt.Errorf("status %d from %q", resp.StatusCode, resp.Header.Get(upstream.HTTPHeaderUpstream))
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET https://secure.example.com: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("cluster-only change", func(t *testing.T) {
		// A connect timeout on Backend a changes its cluster and nothing
		// else: Envoy re-warms the cluster and needs its endpoints again.
		applied(t, s, commit(t, s, "cluster-only change", sc.clusterOnlyFiles()))
		waitACK(ctx, t, s, p.NodeID)
		start := time.Now()
		for {
			n, err := p.Stat(ctx, "cluster_manager.warming_clusters")
			if err == nil && n == 0 {
				break
			}
			// Without its assignment the cluster warms until the initial
			// fetch timeout (15 s).
			if time.Since(start) > 5*time.Second {
				t.Fatalf("a cluster still warming %s after a cluster-only change (%d, %v)", time.Since(start).Round(time.Millisecond), n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		expect(t, scoped, "echo.example.com", "/", 200, "A")
	})

	t.Run("hostname added and removed under a kept-alive connection", func(t *testing.T) {
		kc := dialKeepAlive(t, scoped)
		if code, up := kc.get(t, "echo.example.com"); code != 200 || up != "A" {
			t.Fatalf("echo on the kept-alive connection: %d %q", code, up)
		}
		applied(t, s, commit(t, s, "add new.example.com", sc.newHostFiles(true)))
		waitACK(ctx, t, s, p.NodeID)
		// Once routed, never a 404 again: a new scope's route
		// configuration comes with the scope list.
		routed := false
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; i < 50 || !routed; i++ {
			code, up := kc.get(t, "new.example.com")
			switch {
			case code == 200 && up == "B":
				routed = true
			case routed:
				t.Fatalf("new.example.com answered %d after it was routed", code)
			case time.Now().After(deadline):
				t.Fatalf("new.example.com: %d, never routed", code)
			}
		}
		applied(t, s, commit(t, s, "remove new.example.com", sc.newHostFiles(false)))
		waitACK(ctx, t, s, p.NodeID)
		removedAt := time.Now()
		// The removed hostname's scope is kept for the drain time.
		if code, up := kc.get(t, "new.example.com"); code != 200 || up != "B" {
			t.Errorf("new.example.com right after its removal: %d %q, want B until the drain ends", code, up)
		}
		for {
			code, _ := kc.get(t, "new.example.com")
			if code == 404 {
				break
			}
			if time.Since(removedAt) > drain+10*time.Second {
				t.Fatalf("new.example.com still %d %s after its removal", code, time.Since(removedAt))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, up := kc.get(t, "echo.example.com"); code != 200 || up != "A" {
			t.Errorf("echo on the kept-alive connection after the removal: %d %q", code, up)
		}
	})
}

// scenario is the test's upstreams, ports and certificate, and the files
// of each of its commits.
type scenario struct {
	ups                   map[string]*upstream.HTTPServer
	certs                 string
	caPool                *x509.CertPool
	plain, scoped, secure int
}

func newScenario(t *testing.T) *scenario {
	sc := &scenario{ups: map[string]*upstream.HTTPServer{}, certs: t.TempDir()}
	for _, name := range []string{"A", "B", "Slow", "Flaky"} {
		u, err := upstream.StartHTTP(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(u.Close)
		sc.ups[name] = u
	}
	sc.caPool = writeCert(t, filepath.Join(sc.certs, "platform", "secure"), "secure.example.com")
	sc.plain, sc.scoped, sc.secure = freePort(t), freePort(t), freePort(t)
	return sc
}

func (sc *scenario) backends() string {
	return backendYAML("a", sc.ups["A"]) + backendYAML("b", sc.ups["B"]) + backendYAML("slow", sc.ups["Slow"]) + backendYAML("flaky", sc.ups["Flaky"])
}

// start starts gitxds on the first revision: one plain port, a catch-all
// route.
func (sc *scenario) start(t *testing.T, drain time.Duration) *stack.Stack {
	t.Helper()
	files := map[string]string{
		"platform/kustomization.yaml":     "resources: [namespaces.yaml, gateways.yaml]\n",
		"platform/namespaces.yaml":        "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n",
		"platform/gateways.yaml":          fmt.Sprintf(gatewayHead, sc.certs, sc.plain),
		"teams/web/kustomization.yaml":    "namespace: web\nresources: [backends.yaml, routes.yaml]\n",
		"teams/web/backends.yaml":         sc.backends(),
		"teams/web/routes.yaml":           route("catchall", "plain", "", "a", ""),
		"overlays/dev/kustomization.yaml": "resources: [../../platform, ../../teams/web]\n",
	}
	s, err := stack.Start(context.Background(), stack.Options{Files: files, Interval: 100 * time.Millisecond, ScopeDrain: drain})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	head, _ := s.Repo.Head()
	applied(t, s, "main@sha1:"+head)
	return s
}

// scopedFiles adds a port of exact hostnames and an HTTPS port.
func (sc *scenario) scopedFiles() map[string]string {
	return map[string]string{
		"platform/gateways.yaml": fmt.Sprintf(gatewayHead, sc.certs, sc.plain) + fmt.Sprintf(gatewayMore, sc.scoped, sc.secure),
		"teams/web/routes.yaml":  route("catchall", "plain", "", "a", "") + scopedRoutes(),
	}
}

// clusterOnlyFiles gives Backend a a connect timeout: its cluster changes,
// nothing else does.
func (sc *scenario) clusterOnlyFiles() map[string]string {
	return map[string]string{"teams/web/backends.yaml": sc.backends() + `apiVersion: gitxds.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: a-connect}
spec:
  targetRefs: [{group: gitxds.dev, kind: Backend, name: a}]
  timeout: {tcp: {connectTimeout: 3s}}
---
`}
}

// newHostFiles adds (or removes) hostname new.example.com on the scoped
// port.
func (sc *scenario) newHostFiles(add bool) map[string]string {
	routes := route("catchall", "plain", "", "a", "") + scopedRoutes()
	if add {
		routes += route("new", "scoped", "new.example.com", "b", "")
	}
	return map[string]string{"teams/web/routes.yaml": routes}
}

// TestEnvoyScenarioApplies: every revision TestEnvoyThroughGitxds commits
// is applied by gitxds, nothing rejected, and the scoped port has its
// scopes (this one needs no Envoy: it keeps the Envoy test's
// configuration from rotting where Envoy is missing).
func TestEnvoyScenarioApplies(t *testing.T) {
	sc := newScenario(t)
	s := sc.start(t, time.Second)
	for _, c := range []struct {
		msg   string
		files map[string]string
	}{
		{"scoped and TLS ports", sc.scopedFiles()},
		{"cluster-only change", sc.clusterOnlyFiles()},
		{"add new.example.com", sc.newHostFiles(true)},
		{"remove new.example.com", sc.newHostFiles(false)},
	} {
		applied(t, s, commit(t, s, c.msg, c.files))
		if c.msg == "add new.example.com" {
			set := s.Daemon.XDS.Default()
			var names []string
			// Scopes are what Envoy 1.38 or later is served; older
			// Envoys get one RouteConfiguration per port.
			for _, r := range set.Classes[snapshot.EnvoyScoped].ScopedRoutes {
				names = append(names, r.GetName())
			}
			want := []string{fmt.Sprintf("port-%d/http/echo.example.com", sc.scoped), fmt.Sprintf("port-%d/http/new.example.com", sc.scoped)}
			for _, w := range want {
				if !slices.Contains(names, w) {
					t.Errorf("scopes %v, want %s among them", names, w)
				}
			}
		}
	}
}

func commit(t *testing.T, s *stack.Stack, msg string, files map[string]string) string {
	t.Helper()
	ptrs := map[string]*string{}
	for k, v := range files {
		ptrs[k] = &v
	}
	rev, err := s.Commit(msg, ptrs)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func applied(t *testing.T, s *stack.Stack, rev string) {
	t.Helper()
	st, err := s.WaitAttempted(30*time.Second, rev)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastAppliedRevision != rev {
		t.Fatalf("%s not applied: %+v", rev, st.Get(status.Ready))
	}
	for _, o := range status.Rejected(st.Objects) {
		t.Fatalf("rejected: %s", status.Line(o))
	}
}

// waitACK waits until the Envoy node has ACKed what gitxds serves it.
func waitACK(ctx context.Context, t *testing.T, s *stack.Stack, id string) {
	t.Helper()
	for {
		if info, ok := s.Daemon.XDS.Node(id); ok && info.Served != nil {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := s.Daemon.XDS.WaitACK(wctx, []string{id}, info.Served)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if cur, _ := s.Daemon.XDS.Node(id); cur.Served == info.Served {
				return
			}
			continue // moved on meanwhile
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Envoy node %s never connected", id)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// expect GETs http://127.0.0.1:port/path with Host host until the answer
// is status (from upstream, when not empty), for up to 10 s.
func expect(t *testing.T, port int, host, path string, code int, from string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		var last string
		if err == nil {
			resp.Body.Close()
			up := resp.Header.Get(upstream.HTTPHeaderUpstream)
			if resp.StatusCode == code && (from == "" || up == from) {
				return
			}
			last = fmt.Sprintf("%d from %q", resp.StatusCode, up)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s%s: %s, want %d from %q", host, path, last, code, from)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keepAlive is one HTTP/1.1 connection kept open across requests.
type keepAlive struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialKeepAlive(t *testing.T, port int) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{conn: c, r: bufio.NewReader(c)}
}

// get sends GET / with Host host on the connection: status and upstream.
func (k *keepAlive) get(t *testing.T, host string) (int, string) {
	t.Helper()
	_ = k.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(k.conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		t.Fatalf("kept-alive connection: %v", err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("kept-alive connection: %v", err)
	}
	var body upstream.HTTPResponse
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.Close {
		t.Fatalf("Envoy closed the kept-alive connection (status %d)", resp.StatusCode)
	}
	return resp.StatusCode, resp.Header.Get(upstream.HTTPHeaderUpstream)
}

// writeCert writes a self-signed certificate for host as dir/tls.crt and
// dir/tls.key (a mounted TLS Secret's layout) and returns a pool trusting it.
func writeCert(t *testing.T, dir, host string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(crt)
	return pool
}
