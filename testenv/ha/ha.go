// Package ha runs gitxds as deploy/ha does, as processes on loopback: a
// real Kubernetes API server (testenv/kubeapi), a Git server holding the
// repository, gRPC upstreams, and N `gitxds serve --leader-elect
// --kubeconfig` processes, each with its own --state-dir and addresses.
// Real gRPC-Go xDS clients connect to the replica a scenario chooses.
//
// The scenarios of high availability (a canary on a follower, a follower's
// NACK, the leader killed or paused, the API server unreachable) drive it
// through signals (Kill, Pause, Resume, Stop, Restart), commits, and what
// the API server holds (the Lease, the FleetRollout, the ReplicaReports).
//
// The gitxds binary is built once per test binary (`go build` of
// cmd/gitxds), or taken from $GITXDS_HA_BIN.
package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"gitxds.dev/gitxds/reconciler/kubestate"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/kubeapi"
	"gitxds.dev/gitxds/testenv/stack"
	"gitxds.dev/gitxds/testenv/upstream"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// EnvBin names a gitxds binary to run instead of building one.
const EnvBin = "GITXDS_HA_BIN"

// Lease is the name of the Lease, and so of the FleetRollout.
const Lease = "gitxds"

// Options of a cluster.
type Options struct {
	// Replicas to start (default 3).
	Replicas int
	// Files are the repository's content; Overlay the overlay served
	// (default overlays/dev).
	Files   map[string]string
	Overlay string
	// Upstreams to start: name -> address (stack.FreeAddr()).
	Upstreams map[string]string
	// Interval of the Git poll (default 500ms).
	Interval time.Duration
	// LeaseDuration, RenewDeadline and RetryPeriod of the election
	// (default 4s, 3s, 500ms: a killed leader is replaced in seconds).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Args are extra arguments of every `gitxds serve`.
	Args []string
}

// Cluster is a running set of replicas and what they need.
type Cluster struct {
	API       *kubeapi.Server
	Namespace string
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Git       *gitserver.Server
	Repo      *gitserver.Repo
	Upstreams map[string]*upstream.Server
	Replicas  []*Replica

	t    testing.TB
	o    Options
	bin  string
	view *kubestate.Board // read-only: Rollout and Reports
}

// Replica is one `gitxds serve` process (and its successors, after
// Restart): same name, state directory and addresses.
type Replica struct {
	Name               string
	XDSAddr, AdminAddr string
	StateDir, LogFile  string
	// Args are extra arguments of this replica's `gitxds serve`, after
	// Options.Args, from its next Start (a skewed flag, say).
	Args   []string
	c      *Cluster
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Start starts the API server, the Git server with o.Files committed, the
// upstreams and the replicas, and waits until one replica leads. Everything
// stops when t ends; the replicas' logs are printed when t failed.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Overlay == "" {
		o.Overlay = "overlays/dev"
	}
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
	}
	c := &Cluster{t: t, o: o, Upstreams: map[string]*upstream.Server{}}
	c.bin = Binary(t)
	c.API = kubeapi.Start(t)
	var err error
	if c.Kube, err = c.API.Clientset(); err != nil {
		t.Fatal(err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.API.Config); err != nil {
		t.Fatal(err)
	}
	c.Namespace = c.API.Namespace(t, "gitxds")
	if err := kubestate.InstallCRDs(context.Background(), c.Dynamic, time.Minute); err != nil {
		t.Fatal(err)
	}
	if c.view, err = kubestate.New(kubestate.Options{Client: c.Dynamic, Namespace: c.Namespace, Name: Lease,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	c.Git = gitserver.New(t, gitserver.Options{})
	if c.Repo, err = c.Git.CreateRepo("gateways"); err != nil {
		t.Fatal(err)
	}
	if err := c.Repo.WriteFiles(o.Files); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Repo.Commit("Initial gateway configuration"); err != nil {
		t.Fatal(err)
	}
	for name, addr := range o.Upstreams {
		u, err := upstream.StartOn(name, addr)
		if err != nil {
			t.Fatalf("upstream %s on %s: %v", name, addr, err)
		}
		c.Upstreams[name] = u
		t.Cleanup(u.Close)
	}
	dir := t.TempDir()
	for i := 0; i < o.Replicas; i++ {
		name := fmt.Sprintf("gitxds-%d", i)
		r := &Replica{Name: name, c: c, XDSAddr: stack.FreeAddr(), AdminAddr: stack.FreeAddr(),
			StateDir: filepath.Join(dir, name, "state"), LogFile: filepath.Join(dir, name+".log")}
		c.Replicas = append(c.Replicas, r)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range c.Replicas {
			r.Kill()
		}
		if t.Failed() {
			for _, r := range c.Replicas {
				b, _ := os.ReadFile(r.LogFile)
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("--- %s (log tail) ---\n%s", r.Name, b)
			}
		}
	})
	c.WaitLeader(60 * time.Second)
	// A follower may still be starting when another replica already leads
	// (on a loaded machine, a second or more): wait until each answers.
	deadline := time.Now().Add(60 * time.Second)
	for _, r := range c.Replicas {
		for !r.Healthy(context.Background()) {
			if time.Now().After(deadline) {
				t.Fatalf("ha: %s not healthy 60 s after its start", r.Name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

// Start starts the replica's process (again, after Kill or Stop), on the
// same state directory and addresses.
func (r *Replica) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		select {
		case <-r.exited:
		default:
			return fmt.Errorf("ha: %s is running", r.Name)
		}
	}
	c := r.c
	args := append([]string{"serve",
		"--leader-elect", "--kubeconfig", c.API.Kubeconfig,
		"--leader-election-namespace", c.Namespace, "--leader-election-lease-name", Lease,
		"--leader-election-identity", r.Name,
		"--leader-election-lease-duration", c.o.LeaseDuration.String(),
		"--leader-election-renew-deadline", c.o.RenewDeadline.String(),
		"--leader-election-retry-period", c.o.RetryPeriod.String(),
		"--repo", c.Repo.URL(), "--path", c.o.Overlay, "--interval", c.o.Interval.String(),
		"--xds-address", r.XDSAddr, "--admin-address", r.AdminAddr, "--state-dir", r.StateDir,
		"--discover-services=false",
	}, c.o.Args...)
	args = append(args, r.Args...)
	if err := os.MkdirAll(filepath.Dir(r.LogFile), 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(r.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.starts++
	fmt.Fprintf(log, "=== start %d: gitxds %s\n", r.starts, strings.Join(args, " "))
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "KUBERNETES_SERVICE_HOST=", "KUBECONFIG=")
	cmd.Stdout, cmd.Stderr = log, log
	// The replicas end with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	r.cmd, r.exited = cmd, exited
	return nil
}

func (r *Replica) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	select {
	case <-r.exited:
	default:
		_ = r.cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (r *Replica) Kill() {
	r.signal(syscall.SIGCONT) // a paused process dies as well, but be sure
	r.signal(syscall.SIGKILL)
	r.Wait(10 * time.Second)
}

// Stop sends SIGTERM (a graceful stop: the Lease is released) and waits
// up to timeout for the process to end.
func (r *Replica) Stop(timeout time.Duration) bool {
	r.signal(syscall.SIGTERM)
	return r.Wait(timeout)
}

// Pause freezes the process (SIGSTOP): it neither renews its Lease nor
// notices it lost it until Resume.
func (r *Replica) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (r *Replica) Resume() { r.signal(syscall.SIGCONT) }

// Wait waits up to timeout for the process to end; false if it still runs.
func (r *Replica) Wait(timeout time.Duration) bool {
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Running reports whether the process runs (paused counts as running).
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Supervise restarts the replica whenever its process ends, after
// backoff, as a kubelet restarts a pod's container (a replica that lost
// its Lease exits by design; one that cannot reach the API server at
// start exits too), until stop is called; stop returns how many times it
// restarted it.
func (r *Replica) Supervise(backoff time.Duration) (stop func() (restarts int)) {
	done := make(chan struct{})
	count := make(chan int, 1)
	go func() {
		n := 0
		defer func() { count <- n }()
		for {
			r.mu.Lock()
			exited := r.exited
			r.mu.Unlock()
			select {
			case <-done:
				return
			case <-exited:
			}
			select {
			case <-done:
				return
			case <-time.After(backoff):
			}
			if r.Start() == nil {
				n++
			}
		}
	}()
	return func() int { close(done); return <-count }
}

// Identity is the replica's identity in the Lease.
func (r *Replica) Identity() string { return leader.Identity(r.Name, r.AdminAddr) }

// Client connects a real gRPC-Go xDS client to this replica, closed when
// t ends.
func (r *Replica) Client(t testing.TB, nodeID string, labels map[string]string) *xdsclient.Client {
	t.Helper()
	return xdsclient.NewT(t, xdsclient.Options{ServerAddr: r.XDSAddr, NodeID: nodeID, Metadata: labels})
}

// Status is the replica's GET /status.
func (r *Replica) Status(ctx context.Context) (status.Status, error) {
	var st status.Status
	err := r.getJSON(ctx, "/status", &st)
	return st, err
}

// Healthy reports whether GET /healthz answers 200.
func (r *Replica) Healthy(ctx context.Context) bool { return r.get(ctx, "/healthz") == nil }

// Ready reports whether GET /readyz answers 200.
func (r *Replica) Ready(ctx context.Context) bool { return r.get(ctx, "/readyz") == nil }

func (r *Replica) get(ctx context.Context, path string) error {
	return r.getJSON(ctx, path, nil)
}

func (r *Replica) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.AdminAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %s", path, r.Name, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Reconcile asks the replica to reconcile at once (POST /reconcile; a
// follower forwards it to the leader), as a webhook would.
func (r *Replica) Reconcile(ctx context.Context) error { return r.Post(ctx, "/reconcile") }

// Post sends POST path to the replica's admin API (/reconcile,
// /rollout/abort...; a follower forwards them to the leader).
func (r *Replica) Post(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.AdminAddr+path, strings.NewReader("{}"))
	if err != nil {
		return err
	}
	// Without an admin token, mutating endpoints want JSON (no form a
	// browser could send cross-site).
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s on %s: %s", path, r.Name, resp.Status)
	}
	return nil
}

// Holder is the Lease's holder identity, "" when none.
func (c *Cluster) Holder(ctx context.Context) (string, error) {
	l, err := c.Kube.CoordinationV1().Leases(c.Namespace).Get(ctx, Lease, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// Leader is the replica holding the Lease, nil when none does.
func (c *Cluster) Leader(ctx context.Context) *Replica {
	h, err := c.Holder(ctx)
	if err != nil || h == "" {
		return nil
	}
	for _, r := range c.Replicas {
		if r.Identity() == h {
			return r
		}
	}
	return nil
}

// WaitLeader waits until a running replica holds the Lease and has
// claimed its epoch, and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) *Replica {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx := context.Background()
		if r := c.Leader(ctx); r != nil && r.Running() {
			l, err := c.Kube.CoordinationV1().Leases(c.Namespace).Get(ctx, Lease, metav1.GetOptions{})
			if err == nil && l.Annotations[leader.EpochAnnotation] != "" {
				return r
			}
		}
		if time.Now().After(deadline) {
			h, err := c.Holder(ctx)
			c.t.Fatalf("ha: no running leader after %s (holder %q, %v)", timeout, h, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitNewLeader waits until a replica other than old holds the Lease and
// has claimed its epoch (old may still run, paused), and returns it.
func (c *Cluster) WaitNewLeader(old *Replica, timeout time.Duration) *Replica {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx := context.Background()
		if r := c.Leader(ctx); r != nil && r != old && r.Running() {
			l, err := c.Kube.CoordinationV1().Leases(c.Namespace).Get(ctx, Lease, metav1.GetOptions{})
			if err == nil && l.Annotations[leader.EpochAnnotation] != "" {
				return r
			}
		}
		if time.Now().After(deadline) {
			h, err := c.Holder(ctx)
			c.t.Fatalf("ha: no new leader after %s (holder %q, %v)", timeout, h, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Followers are the running replicas that do not hold the Lease.
func (c *Cluster) Followers(ctx context.Context) []*Replica {
	l := c.Leader(ctx)
	var out []*Replica
	for _, r := range c.Replicas {
		if r != l && r.Running() {
			out = append(out, r)
		}
	}
	return out
}

// Commit writes files (a nil value removes the file), commits them, and
// asks the leader to reconcile at once. It returns the revision gitxds
// reports.
func (c *Cluster) Commit(ctx context.Context, msg string, files map[string]*string) (string, error) {
	write := map[string]string{}
	for name, content := range files {
		if content == nil {
			if err := c.Repo.Remove(name); err != nil {
				return "", err
			}
			continue
		}
		write[name] = *content
	}
	if err := c.Repo.WriteFiles(write); err != nil {
		return "", err
	}
	sha, err := c.Repo.Commit(msg)
	if err != nil {
		return "", err
	}
	if l := c.Leader(ctx); l != nil {
		_ = l.Reconcile(ctx) // the poll catches up otherwise
	}
	return "main@sha1:" + sha, nil
}

// Rollout is the FleetRollout as the API server holds it.
func (c *Cluster) Rollout(ctx context.Context) (rollout.FleetState, bool, error) {
	return c.view.Rollout(ctx)
}

// Reports are the ReplicaReports as the API server holds them.
func (c *Cluster) Reports(ctx context.Context) ([]rollout.ReplicaReport, error) {
	return c.view.Reports(ctx)
}

// WaitRollout waits until the FleetRollout satisfies cond, and returns it.
func (c *Cluster) WaitRollout(timeout time.Duration, what string, cond func(rollout.FleetState) bool) rollout.FleetState {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last rollout.FleetState
	for {
		s, ok, err := c.Rollout(context.Background())
		if err == nil && ok {
			last = s
			if cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ha: FleetRollout not %s after %s; last %+v (err %v)", what, timeout, last, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary is the gitxds binary the replicas run: $GITXDS_HA_BIN, or one
// built (once per test binary) from this checkout.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv(EnvBin); b != "" {
		return b
	}
	build.once.Do(func() {
		root, err := stack.FindRoot()
		if err != nil {
			build.err = err
			return
		}
		dir, err := os.MkdirTemp("", "gitxds-ha-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "gitxds")
		cmd := exec.Command("go", "build", "-o", build.bin, "./cmd/gitxds")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/gitxds: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("ha: %v", build.err)
	}
	return build.bin
}

// Main runs the tests, then removes the binary Binary built:
//
//	func TestMain(m *testing.M) { ha.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}
