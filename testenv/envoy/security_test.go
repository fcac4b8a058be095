package envoy_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/authz"
	"gitxds.dev/gitxds/testenv/envoy"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/upstream"
)

// secScenario is token separation through a real Envoy: a JWT issuer
// (keys generated at start-up), an external authorization service that
// mints the internal token, and one upstream that records what reached it.
type secScenario struct {
	// keysDir is the credentials directory of the API key policy
	// (gitxds.dev/certs-dir); its key file is web/keys/api-keys.
	keysDir string
	up      *upstream.HTTPServer
	issuer  *authz.Issuer
	auth    *authz.Server
	port    int
}

func newSecScenario(t *testing.T) *secScenario {
	t.Helper()
	sc := &secScenario{port: freePort(t), keysDir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(sc.keysDir, "web", "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	sc.writeKeys(t, "alice:key-a\n")
	var err error
	if sc.up, err = upstream.StartHTTP("A"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.up.Close)
	if sc.issuer, err = authz.NewIssuer("https://login.test"); err != nil {
		t.Fatal(err)
	}
	if err := sc.issuer.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.issuer.Close)
	if sc.auth, err = authz.Start("internal-secret"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.auth.Close)
	return sc
}

func ipBackend(name string, port int) string {
	return fmt.Sprintf("apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: %s}\nspec:\n  endpoints: [{ip: {address: 127.0.0.1, port: %d}}]\n---\n", name, port)
}

// policy is the team's SecurityPolicy on route name: JWT from the
// issuer (not forwarded, sub to x-user-id), then the authorization
// service (grpc or http) whose internal token reaches the service, and
// authorization rules.
func (sc *secScenario) policy(name, authService, rules string) string {
	ext := "    grpc: {backendRefs: [{name: authz-grpc}], headersToBackend: [" + authzHeader + "]}\n"
	if authService == "http" {
		ext = "    http: {backendRefs: [{name: authz-http}], path: /check, headersToBackend: [" + authzHeader + "]}\n"
	}
	return fmt.Sprintf(`apiVersion: gitxds.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: %s}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: %s}]
  jwt:
    providers:
    - name: login
      issuer: https://login.test
      remoteJWKS: {uri: %q, backendRefs: [{name: jwks}]}
      claimToHeaders: [{claim: sub, header: %s}]
  extAuth:
%s    headersToExtAuth: [%s, %s]
%s---
`, name, name, sc.issuer.URL(), authz.HeaderIdentity, ext, authz.HeaderIdentity, authz.HeaderDeny, rules)
}

const authzHeader = authz.HeaderInternalToken

// writeKeys replaces the API key file (a rename, as docs/security.md
// advises).
func (sc *secScenario) writeKeys(t *testing.T, content string) {
	t.Helper()
	dir := filepath.Join(sc.keysDir, "web", "keys")
	tmp := filepath.Join(dir, ".api-keys.new")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "api-keys")); err != nil {
		t.Fatal(err)
	}
}

// apiKeyPolicy checks API keys from the file of keysDir on route keyed.
func (sc *secScenario) apiKeyPolicy() string {
	return fmt.Sprintf(`apiVersion: gitxds.dev/v1alpha1
kind: SecurityPolicy
metadata: {name: keyed, annotations: {gitxds.dev/certs-dir: %q}}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: keyed}]
  apiKeyAuth:
    credentialRefs: [{name: keys}]
    extractFrom: [{headers: [x-api-key]}, {params: [api_key]}]
    forwardClientIDHeader: x-client-id
    sanitize: true
---
`, sc.keysDir)
}

func (sc *secScenario) files() map[string]string {
	gw := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: plain, port: %d, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
`, sc.port)
	backends := ipBackend("a", sc.up.Port()) + ipBackend("jwks", sc.issuer.Port()) +
		ipBackend("authz-grpc", sc.auth.GRPCPort()) + ipBackend("authz-http", sc.auth.HTTPPort())
	routes := route("secure", "plain", "secure.example.com", "a", "") +
		route("secure-http", "plain", "secure-http.example.com", "a", "") +
		route("blocked", "plain", "blocked.example.com", "a", "") +
		route("open", "plain", "open.example.com", "a", "") +
		route("keyed", "plain", "keyed.example.com", "a", "")
	policies := sc.policy("secure", "grpc", "") + sc.policy("secure-http", "http", "") +
		sc.policy("blocked", "grpc", "  authorization:\n    defaultAction: Allow\n    rules: [{action: Deny, principal: {clientCIDRs: [127.0.0.0/8]}}]\n") +
		sc.apiKeyPolicy()
	return map[string]string{
		"platform/kustomization.yaml":     "resources: [namespaces.yaml, gateways.yaml]\n",
		"platform/namespaces.yaml":        "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n",
		"platform/gateways.yaml":          gw,
		"teams/web/kustomization.yaml":    "namespace: web\nresources: [backends.yaml, routes.yaml, security.yaml]\n",
		"teams/web/backends.yaml":         backends,
		"teams/web/routes.yaml":           routes,
		"teams/web/security.yaml":         policies,
		"overlays/dev/kustomization.yaml": "resources: [../../platform, ../../teams/web]\n",
	}
}

func (sc *secScenario) start(t *testing.T) *stack.Stack {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Options{Files: sc.files(), Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	head, _ := s.Repo.Head()
	applied(t, s, "main@sha1:"+head)
	return s
}

// TestSecurityScenarioApplies: the configuration TestEnvoySecurity serves
// is accepted by gitxds and served with the policy filters, enabled only
// on the secured routes (this one needs no Envoy).
func TestSecurityScenarioApplies(t *testing.T) {
	sc := newSecScenario(t)
	s := sc.start(t)
	set := s.Daemon.XDS.Default()
	for _, c := range []snapshot.Class{snapshot.Envoy, snapshot.EnvoyScoped} {
		for _, rc := range set.Classes[c].Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					n := len(r.GetTypedPerFilterConfig())
					secured := !strings.HasPrefix(vh.GetName(), "open.")
					if secured != (n > 0) {
						t.Errorf("%s %s route %s: %d per-filter configs", c, vh.GetName(), r.GetName(), n)
					}
				}
			}
		}
	}
}

// TestEnvoySecurity sends real requests through Envoy: a valid, an
// invalid and a missing JWT; the claim header upstream; the external
// token stripped; the internal token injected (and a client's forged copy
// replaced); an ext_authz deny; an IP denied; a route without a policy
// untouched; API keys (valid, unknown, missing, in a query parameter, a
// rotated file, a missing file). It runs when ENVOY_BIN names an Envoy binary or envoy is on
// PATH.
func TestEnvoySecurity(t *testing.T) {
	envoy.Require(t)
	sc := newSecScenario(t)
	s := sc.start(t)
	p := envoy.StartT(t, envoy.Options{XDSAddr: s.Daemon.XDSAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitACK(ctx, t, s, p.NodeID)

	good, err := sc.issuer.Sign(map[string]any{"sub": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := authz.NewIssuer("https://login.test")
	forged, _ := other.Sign(map[string]any{"sub": "mallory"})

	// send GETs host with headers until the answer is code (the JWKS
	// fetch and the clusters warm up after the ACK), and returns the
	// request the upstream saw for a 200.
	sendPath := func(t *testing.T, host, path string, h map[string]string, code int) *http.Request {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			sc.up.Reset()
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", sc.port, path), nil)
			req.Host = host
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			last := ""
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == code {
					if code == http.StatusOK {
						return sc.up.LastRequest()
					}
					return nil
				}
				last = fmt.Sprint(resp.StatusCode)
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %s, want %d", host, last, code)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	send := func(t *testing.T, host string, h map[string]string, code int) *http.Request {
		t.Helper()
		return sendPath(t, host, "/", h, code)
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	for _, host := range []string{"secure.example.com", "secure-http.example.com"} {
		t.Run("valid JWT "+host, func(t *testing.T) {
			h := bearer(good)
			h[authz.HeaderInternalToken] = "forged-by-the-client"
			h[authz.HeaderIdentity] = "mallory"
			r := send(t, host, h, http.StatusOK)
			if got := r.Header.Values(authz.HeaderIdentity); len(got) != 1 || got[0] != "alice" {
				t.Errorf("claim header upstream %q, want [alice]", got)
			}
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("the external token reached the service: %q", got)
			}
			if got := r.Header.Values(authz.HeaderInternalToken); len(got) != 1 || got[0] != sc.auth.Token("alice") {
				t.Errorf("internal token upstream %q, want [%s]", got, sc.auth.Token("alice"))
			}
			if got := r.Header.Get(authz.HeaderExtra); got != "" {
				t.Errorf("a header headersToBackend does not name reached the service: %q", got)
			}
			seen := sc.auth.Seen()
			if last := seen[len(seen)-1]; last["authorization"] != "" {
				t.Errorf("the authorization service saw the external token")
			}
		})
	}
	t.Run("invalid JWT", func(t *testing.T) { send(t, "secure.example.com", bearer(forged), http.StatusUnauthorized) })
	t.Run("missing JWT", func(t *testing.T) { send(t, "secure.example.com", nil, http.StatusUnauthorized) })
	t.Run("ext_authz deny", func(t *testing.T) {
		h := bearer(good)
		h[authz.HeaderDeny] = "1"
		send(t, "secure.example.com", h, http.StatusForbidden)
	})
	t.Run("IP denied", func(t *testing.T) { send(t, "blocked.example.com", bearer(good), http.StatusForbidden) })
	t.Run("route without a policy", func(t *testing.T) {
		r := send(t, "open.example.com", bearer(forged), http.StatusOK)
		if r.Header.Get("Authorization") == "" || r.Header.Get(authz.HeaderInternalToken) != "" {
			t.Errorf("the policy of another route changed this one: %v", r.Header)
		}
	})
	t.Run("API key", func(t *testing.T) {
		r := send(t, "keyed.example.com", map[string]string{"x-api-key": "key-a", "x-client-id": "root"}, http.StatusOK)
		if got := r.Header.Values("x-client-id"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("client id upstream %q, want [alice]", got)
		}
		if got := r.Header.Get("x-api-key"); got != "" {
			t.Errorf("the key reached the service (sanitize): %q", got)
		}
		r = sendPath(t, "keyed.example.com", "/q?api_key=key-a&x=1", nil, http.StatusOK)
		if r.URL.RawQuery != "x=1" {
			t.Errorf("query upstream %q, want x=1", r.URL.RawQuery)
		}
		send(t, "keyed.example.com", map[string]string{"x-api-key": "unknown"}, http.StatusUnauthorized)
		send(t, "keyed.example.com", nil, http.StatusUnauthorized)
		// A rotated file: the new key within the reload period, the
		// old one refused (send retries until the answer is the one
		// wanted).
		sc.writeKeys(t, "bob:key-b\n")
		send(t, "keyed.example.com", map[string]string{"x-api-key": "key-b"}, http.StatusOK)
		send(t, "keyed.example.com", map[string]string{"x-api-key": "key-a"}, http.StatusUnauthorized)
		// A missing file fails closed.
		if err := os.Remove(filepath.Join(sc.keysDir, "web", "keys", "api-keys")); err != nil {
			t.Fatal(err)
		}
		send(t, "keyed.example.com", map[string]string{"x-api-key": "key-b"}, http.StatusUnauthorized)
	})
}
