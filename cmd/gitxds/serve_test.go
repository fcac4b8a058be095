package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"gitxds.dev/gitxds/reconciler/kubeevents"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/syncbuf"
)

func TestEnvSetsFlagsAndFlagsWin(t *testing.T) {
	c := newServe()
	if err := c.Flags().Parse([]string{"--repo", "from-flag", "--interval", "5s"}); err != nil {
		t.Fatal(err)
	}
	unknown, err := applyEnv(c.Flags(), []string{
		"GITXDS_REPO=from-env",
		"GITXDS_PATH=overlays/prod",
		"GITXDS_XDS_ADDRESS=0.0.0.0:18000",
		"GITXDS_INTERVAL=1h",
		"GITXDS_INSECURE_SKIP_HOST_KEY_CHECK=true",
		"GITXDS_HTTPS_TOKEN=secret",
		"GITXDS_REPOO=typo",
		"GITXDS_SERVICE_HOST=10.0.0.1",
		"GITXDS_PORT_18000_TCP=tcp://10.0.0.1:18000",
		"HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) string { return c.Flags().Lookup(name).Value.String() }
	for name, want := range map[string]string{
		"repo": "from-flag", "interval": "5s", // the command line wins
		"path": "overlays/prod", "xds-address": "0.0.0.0:18000", "insecure-skip-host-key-check": "true",
		"admin-address": "127.0.0.1:9400", // default untouched
	} {
		if got := get(name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	if len(unknown) != 1 || unknown[0] != "GITXDS_REPOO" {
		t.Errorf("unknown = %v", unknown)
	}
	_, err = applyEnv(newServe().Flags(), []string{"GITXDS_INTERVAL=hunter2"})
	if err == nil || !strings.Contains(err.Error(), "GITXDS_INTERVAL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad value: %v", err)
	}
}

// Every flag of serve has a variable, and the help says so.
func TestEveryServeFlagHasAnEnvName(t *testing.T) {
	c := newServe()
	n := 0
	c.Flags().VisitAll(func(f *pflag.Flag) {
		n++
		if !strings.HasPrefix(envName(f.Name), "GITXDS_") || strings.Contains(envName(f.Name), "-") {
			t.Errorf("--%s -> %s", f.Name, envName(f.Name))
		}
	})
	if n < 20 || !strings.Contains(c.Long, "GITXDS_XDS_ADDRESS") {
		t.Errorf("%d flags; help: %s", n, c.Long)
	}
}

// TestServeHelperProcess is `gitxds` itself when run by TestServeProcess.
func TestServeHelperProcess(t *testing.T) {
	if os.Getenv("GITXDS_TEST_HELPER") != "1" {
		t.Skip("helper process")
	}
	root := newRoot()
	root.SetArgs(strings.Fields(os.Getenv("GITXDS_TEST_ARGS")))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gitxds:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// TestServeProcess runs `gitxds serve` as a process configured through
// GITXDS_ variables only, with JSON logs: it serves, takes a signed GitHub
// push, and exits 0 on SIGTERM after draining.
func TestServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s, err := stack.Start(context.Background(), stack.Options{Interval: time.Hour})
	if err != nil {
		t.Skip("needs the git CLI:", err)
	}
	defer s.Close()
	s.StopDaemon()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte("whsec\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := stack.FreeAddr()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(os.Environ(),
		"GITXDS_TEST_HELPER=1", "GITXDS_TEST_ARGS=serve",
		"GITXDS_REPO="+s.Repo.URL(), "GITXDS_PATH="+s.Opts.Overlay, "GITXDS_INTERVAL=1h",
		"GITXDS_XDS_ADDRESS="+stack.FreeAddr(), "GITXDS_ADMIN_ADDRESS="+admin,
		"GITXDS_STATE_DIR="+filepath.Join(dir, "state"), "GITXDS_LOG_FORMAT=json",
		"GITXDS_WEBHOOK_SECRET_FILE="+secretFile)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + admin
	if !waitHTTP(base+"/readyz", 30*time.Second) {
		t.Fatalf("not ready; stderr:\n%s", stderr.String())
	}
	body := `{"ref":"refs/heads/main","after":"x"}`
	m := hmac.New(sha256.New, []byte("whsec"))
	m.Write([]byte(body))
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/github", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM; stderr:\n%s", stderr.String())
	}
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	stopped := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "PASS") || strings.HasPrefix(line, "ok") || line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if rec["msg"] == "stopped" {
			stopped = true
		}
	}
	if !stopped {
		t.Errorf("no \"stopped\" log line:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err != nil {
		t.Errorf("state dir: %v", err)
	}
}

func waitHTTP(url string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Every GITXDS_ variable the Kubernetes manifests set (or show commented
// out) is a flag of serve.
func TestDeployConfigNamesServeFlags(t *testing.T) {
	known := map[string]bool{"GITXDS_HTTPS_TOKEN": true}
	newServe().Flags().VisitAll(func(f *pflag.Flag) { known[envName(f.Name)] = true })
	n := 0
	for _, file := range []string{"../../deploy/base/gitxds/config.yaml", "../../deploy/ha/kustomization.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimLeft(line, " #-")
			line = strings.TrimPrefix(line, "name: ")
			name, _, ok := strings.Cut(line, ":")
			if !ok {
				name = line
			}
			name = strings.TrimSpace(name)
			if !strings.HasPrefix(name, "GITXDS_") {
				continue
			}
			n++
			if !known[name] {
				t.Errorf("%s sets %s, which is no flag of serve", file, name)
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d variables found", n)
	}
}

func TestLeaderElectOutsideACluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, _, err := leaderOptions(serveFlags{leaderElect: true, leaderLease: "gitxds"})
	if err == nil || !strings.Contains(err.Error(), "Kubernetes pod, or --kubeconfig") {
		t.Fatalf("want a refusal outside a cluster without a kubeconfig, got %v", err)
	}
}

// --leader-elect outside a pod reads --kubeconfig (or $KUBECONFIG): the
// Lease and the rollout objects are in the context's namespace unless
// --leader-election-namespace names another, and the replica's report is
// named after its identity, owned by its pod when POD_NAME and POD_UID say
// which (and the pod has that name, in that namespace).
func TestLeaderElectKubeconfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	// Nothing is dialled while the configuration is built.
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: gateways}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	base := serveFlags{leaderElect: true, leaderLease: "gitxds", leaderIdentity: "gitxds-0", advertiseAdmin: "10.0.0.7:9400"}
	for _, c := range []struct {
		name   string
		f      func(*serveFlags)
		wantNS string
	}{
		{"--kubeconfig", func(f *serveFlags) { f.kubeconfig = kc }, "gateways"},
		{"$KUBECONFIG", func(f *serveFlags) { f.environ = []string{"KUBECONFIG=" + kc} }, "gateways"},
		{"--leader-election-namespace", func(f *serveFlags) { f.kubeconfig, f.leaderNamespace = kc, "ops" }, "ops"},
	} {
		f := base
		c.f(&f)
		lo, board, err := leaderOptions(f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if lo.Client == nil || lo.Namespace != c.wantNS || lo.Name != "gitxds" || lo.Identity != "gitxds-0@10.0.0.7:9400" || lo.MinEpoch == nil {
			t.Errorf("%s: leader options %+v", c.name, lo)
		}
		if board == nil {
			t.Fatalf("%s: no Board", c.name)
		}
	}
	f := base
	f.kubeconfig, f.leaseDuration, f.renewDeadline, f.retryPeriod = kc, 3*time.Second, 2*time.Second, 500*time.Millisecond
	if lo, _, err := leaderOptions(f); err != nil || lo.LeaseDuration != 3*time.Second || lo.RenewDeadline != 2*time.Second || lo.RetryPeriod != 500*time.Millisecond {
		t.Errorf("election timing: %+v %v", lo, err)
	}
	f.renewDeadline = 3 * time.Second
	if _, _, err := leaderOptions(f); err == nil {
		t.Error("a renew deadline as long as the lease accepted")
	}
	env := []string{"POD_NAME=gitxds-0", "POD_UID=0c6f7b6e-1b1f-4a57-9d0e-7d3b1e2b9f10"}
	if o := podOwner(env, "gitxds-0", "gitxds-system", "gitxds-system"); o == nil || o.Kind != "Pod" || o.Name != "gitxds-0" || string(o.UID) != "0c6f7b6e-1b1f-4a57-9d0e-7d3b1e2b9f10" {
		t.Errorf("owner %+v", o)
	}
	if o := podOwner(env, "other", "gitxds-system", "gitxds-system"); o != nil {
		t.Errorf("a report named otherwise than the pod is owned by it: %+v", o)
	}
	if o := podOwner(env, "gitxds-0", "ops", "gitxds-system"); o != nil {
		t.Errorf("a report in another namespace than the pod's is owned by it: %+v", o)
	}
	if o := podOwner(env, "gitxds-0", "gitxds-system", ""); o != nil {
		t.Errorf("owned outside a pod: %+v", o)
	}
}

// --xds-node-id-pattern and --xds-node-labels-file become the daemon's
// NodeIdentity; a pattern without {id} or a malformed labels file is a
// usage error.
func TestServeNodeIdentityFlags(t *testing.T) {
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.yaml")
	if err := os.WriteFile(labels, []byte("edge-1: {rollout-group: canary}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := serveFlags{repo: dir, path: "overlays/dev"}
	f := base
	f.nodeIDPattern, f.nodeLabelsFile = "spiffe://example.org/node/{id}", labels
	cfg, err := daemonConfig(f, log)
	if err != nil {
		t.Fatal(err)
	}
	if ni := cfg.NodeIdentity; ni == nil || ni.Pattern != f.nodeIDPattern || ni.Labels["edge-1"]["rollout-group"] != "canary" {
		t.Fatalf("NodeIdentity %+v", cfg.NodeIdentity)
	}
	f = base
	f.nodeIDPattern = "spiffe://example.org/node"
	if _, err := daemonConfig(f, log); err == nil {
		t.Error("a pattern without {id} is accepted")
	}
	if err := os.WriteFile(labels, []byte("edge-1: [not, a, map]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f = base
	f.nodeLabelsFile = labels
	if _, err := daemonConfig(f, log); err == nil {
		t.Error("a malformed labels file is accepted")
	}
}

// --kube-events without --leader-elect reads --kubeconfig (or
// $KUBECONFIG): the Events regard the Lease in the context's namespace,
// unless --leader-election-namespace names another; outside a pod and
// without a kubeconfig it is a usage error; --kube-events=false turns the
// Events of --leader-elect off.
func TestServeKubeEventsFlags(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	// Nothing is dialled while the configuration is built.
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: gateways}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := serveFlags{repo: dir, path: "overlays/dev", leaderLease: "gitxds", leaderIdentity: "gitxds-0", kubeEvents: true, kubeEventsSet: true}
	for _, c := range []struct {
		name   string
		f      func(*serveFlags)
		wantNS string
	}{
		{"--kubeconfig", func(f *serveFlags) { f.kubeconfig = kc }, "gateways"},
		{"$KUBECONFIG", func(f *serveFlags) { f.environ = []string{"KUBECONFIG=" + kc} }, "gateways"},
		{"--leader-election-namespace", func(f *serveFlags) { f.kubeconfig, f.leaderNamespace = kc, "ops" }, "ops"},
	} {
		f := base
		c.f(&f)
		cfg, err := daemonConfig(f, log)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := kubeevents.LeaseReference(c.wantNS, "gitxds")
		if ko := cfg.KubeEvents; ko == nil || ko.Client == nil || ko.Regarding != want || ko.Instance != "gitxds-0" {
			t.Errorf("%s: KubeEvents %+v, want regarding %+v", c.name, cfg.KubeEvents, want)
		}
	}
	if _, err := daemonConfig(base, log); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("--kube-events outside a pod without a kubeconfig: %v", err)
	}
	f := base
	f.kubeEvents = false
	if cfg, err := daemonConfig(f, log); err != nil || !cfg.NoKubeEvents || cfg.KubeEvents != nil {
		t.Errorf("--kube-events=false: NoKubeEvents=%v KubeEvents=%v err=%v", cfg.NoKubeEvents, cfg.KubeEvents, err)
	}
}
