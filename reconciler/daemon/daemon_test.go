package daemon_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/echorepo"
	"gitxds.dev/gitxds/testenv/stack"
)

const clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

// backend is teams/echo/backends.yaml with the backend on port.
func backend(port string) string { return echorepo.Backend("a", port) }

// files is the echo repository (package echorepo) with its backend on port.
func files(port string) map[string]string { return echorepo.Files(backend(port), "a") }

// env is a Git server with a repository; the test starts its own daemon on
// it (the stack's own daemon is stopped).
type env struct {
	*stack.Stack
	t *testing.T
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvFiles(t, files("9001"))
}

// newEnvFiles is newEnv with the repository's files.
func newEnvFiles(t *testing.T, fs map[string]string) *env {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Options{Files: fs, Interval: time.Hour})
	if err != nil {
		t.Skip("needs the git CLI:", err)
	}
	t.Cleanup(s.Close)
	s.StopDaemon()
	return &env{Stack: s, t: t}
}

func (e *env) start(cfg daemon.Config) *daemon.Daemon {
	e.t.Helper()
	cfg.Repo, cfg.Ref, cfg.Path = e.Repo.URL(), "main", echorepo.Overlay
	cfg.XDSAddress, cfg.AdminAddress, cfg.StateDir = "127.0.0.1:0", "127.0.0.1:0", e.Opts.StateDir
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, err := daemon.Start(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.Daemon = d
	return d
}

func (e *env) commit(port string) string {
	e.t.Helper()
	if err := e.Repo.WriteFiles(map[string]string{"teams/echo/backends.yaml": backend(port)}); err != nil {
		e.t.Fatal(err)
	}
	sha, err := e.Repo.Commit("move echo to " + port)
	if err != nil {
		e.t.Fatal(err)
	}
	return "main@sha1:" + sha
}

func post(t *testing.T, url string, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// A push delivered by webhook is applied at once, long before the poll
// interval (an hour); a forged one changes nothing.
func TestWebhookAppliesPushWithoutWaitingForPoll(t *testing.T) {
	e := newEnv(t)
	const secret = "whsec"
	d := e.start(daemon.Config{WebhookSecret: []byte(secret)})
	first, _ := e.Repo.Head()
	if _, err := e.WaitApplied(20*time.Second, "main@sha1:"+first); err != nil {
		t.Fatal(err)
	}
	rev := e.commit("9002")
	body := `{"ref":"refs/heads/main","after":"` + strings.TrimPrefix(rev, "main@sha1:") + `"}`
	hooks := "http://" + d.AdminAddr + "/hooks/github"

	code, _ := post(t, hooks, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "1", "X-Hub-Signature-256": sign("forged", body)})
	if code != http.StatusUnauthorized {
		t.Fatalf("forged delivery: %d", code)
	}
	time.Sleep(500 * time.Millisecond)
	if st := e.Status(); st.LastAttemptedRevision == rev {
		t.Fatal("a forged delivery caused a reconcile")
	}

	start := time.Now()
	code, msg := post(t, hooks, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "1", "X-Hub-Signature-256": sign(secret, body)})
	if code != http.StatusAccepted {
		t.Fatalf("valid delivery: %d %s", code, msg)
	}
	if _, err := e.WaitApplied(20*time.Second, rev); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %v after the webhook (poll interval 1h)", time.Since(start).Round(time.Millisecond))
	code, msg = post(t, hooks, body, map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "1", "X-Hub-Signature-256": sign(secret, body)})
	if code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Fatalf("replay: %d %s", code, msg)
	}

	m := get(t, "http://"+d.AdminAddr+"/metrics")
	for _, want := range []string{
		`gitxds_webhook_deliveries_total{provider="github",result="triggered"} 1`,
		`gitxds_webhook_deliveries_total{provider="github",result="unauthorized"} 1`,
		`gitxds_webhook_deliveries_total{provider="github",result="duplicate"} 1`,
		`gitxds_revision_info{kind="applied",revision="` + rev + `"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestNoWebhooksWithoutSecret(t *testing.T) {
	e := newEnv(t)
	d := e.start(daemon.Config{})
	if code, _ := post(t, "http://"+d.AdminAddr+"/hooks/github", "{}", nil); code != http.StatusNotFound {
		t.Fatalf("/hooks/github without a secret: %d", code)
	}
}

func TestAdminToken(t *testing.T) {
	e := newEnv(t)
	d := e.start(daemon.Config{AdminToken: "t0ken"})
	base := "http://" + d.AdminAddr
	for _, path := range []string{"/reconcile", "/rollout/pause"} {
		if code, _ := post(t, base+path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d", path, code)
		}
		if code, _ := post(t, base+path, "", map[string]string{"Authorization": "Bearer nope"}); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
	}
	if code, _ := post(t, base+"/reconcile", "", map[string]string{"Authorization": "Bearer t0ken"}); code != http.StatusAccepted {
		t.Errorf("/reconcile with the token: %d", code)
	}
	if !strings.Contains(get(t, base+"/status"), "conditions") {
		t.Error("GET /status needs no token")
	}
}

// Without a token, the controls of a running serve refuse what a web page
// of another site can send (text/plain, a foreign Origin), and accept JSON
// from a script or from the admin address itself.
func TestAdminControlsRefuseCrossSiteRequests(t *testing.T) {
	e := newEnv(t)
	d := e.start(daemon.Config{})
	base := "http://" + d.AdminAddr
	for _, path := range []string{"/reconcile", "/rollout/abort"} {
		if code, _ := post(t, base+path, "{}", map[string]string{"Content-Type": "text/plain"}); code != http.StatusUnsupportedMediaType {
			t.Errorf("%s as text/plain: %d", path, code)
		}
		if code, _ := post(t, base+path, "{}", map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden {
			t.Errorf("%s from another Origin: %d", path, code)
		}
	}
	if code, body := post(t, base+"/reconcile", "{}", map[string]string{"Origin": base}); code != http.StatusAccepted {
		t.Errorf("/reconcile as JSON from the admin address: %d %s", code, body)
	}
}

// ads opens an ADS stream as an Envoy node and returns the first CDS
// response, or the error.
func ads(ctx context.Context, addr string, creds credentials.TransportCredentials) (*discoverygrpc.DiscoveryResponse, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&discoverygrpc.DiscoveryRequest{TypeUrl: clusterType,
		Node: &corev3.Node{Id: "edge-1", UserAgentName: "envoy"}}); err != nil {
		return nil, err
	}
	return stream.Recv()
}

// dialADS opens a plaintext ADS stream as an Envoy node and asks for CDS.
func dialADS(t *testing.T, addr string) discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoverygrpc.DiscoveryRequest{TypeUrl: clusterType,
		Node: &corev3.Node{Id: "edge-2", UserAgentName: "envoy"}}); err != nil {
		t.Fatal(err)
	}
	return stream
}

func TestXDSWithoutTLSStillServes(t *testing.T) {
	e := newEnv(t)
	d := e.start(daemon.Config{})
	first, _ := e.Repo.Head()
	if _, err := e.WaitApplied(20*time.Second, "main@sha1:"+first); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ads(ctx, d.XDSAddr, insecure.NewCredentials())
	if err != nil || len(resp.Resources) == 0 {
		t.Fatalf("plaintext ADS: %v %v", resp, err)
	}
}

func TestSourceVerificationFailureInStatus(t *testing.T) {
	e := newEnv(t)
	e.start(daemon.Config{VerifyCommit: refuseAll})
	st, err := e.WaitStatus(20*time.Second, "verification failure", func(st status.Status) bool {
		c := st.Get(status.Ready)
		return c != nil && c.Reason == status.ReasonVerificationFailed
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.LastAppliedRevision != "" || !strings.Contains(st.Get(status.Ready).Message, "is not signed") {
		t.Fatalf("status: applied %q, %q", st.LastAppliedRevision, st.Get(status.Ready).Message)
	}
}
