// Package stack starts a whole gitxds environment from real components: a
// smart-HTTP Git server holding a copy of the example repository, gitxds
// itself (the daemon `gitxds serve` runs), and gRPC upstreams. The demo and
// the end-to-end tests drive it the way a user would: with commits.
package stack

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/upstream"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// Options of a stack.
type Options struct {
	// Root is the gitxds checkout whose repo-layout/ and overlays/ are copied
	// into the Git repository; found from the working directory when empty.
	Root string
	// Files, when set, are the repository's content instead of the example.
	Files map[string]string
	// Extra files are written over the repository's content (the example
	// or Files) before its first commit, e.g. an overlay of the demo.
	Extra map[string]string
	// Overlay served (default overlays/dev).
	Overlay string
	// Upstreams to start: name -> address ("127.0.0.1:0" for any port).
	Upstreams map[string]string
	// StateDir (default: a temporary directory removed by Close).
	StateDir string
	// Interval of the poll (default 200ms).
	Interval time.Duration
	// Log of the daemon (default: discarded).
	Log *slog.Logger
	// XDSTLS and NodeIdentity are the daemon's (mutual TLS, node identity).
	XDSTLS       *tls.Config
	NodeIdentity *xds.NodeIdentity
	// Translate and NewQuerier are the daemon's test seams.
	Translate  pipeline.TranslateFunc
	NewQuerier func(string) (rollout.Querier, error)
	// Notify are the daemon's notification providers.
	Notify []notify.Provider
	// ScopeDrain is the daemon's (daemon.Config.ScopeDrain).
	ScopeDrain time.Duration
	// Kube is the daemon's Kubernetes client of Service discovery
	// (daemon.Config.Kube): nil, Services resolve by DNS.
	Kube kubernetes.Interface
}

// Stack is a running environment.
type Stack struct {
	Git       *gitserver.Server
	Repo      *gitserver.Repo
	Daemon    *daemon.Daemon
	Upstreams map[string]*upstream.Server
	Opts      Options

	ctx     context.Context
	cancel  context.CancelFunc
	cleanup []func()
}

// Start starts the Git server with the repository committed, the upstreams
// and gitxds.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Overlay == "" {
		o.Overlay = "overlays/dev"
	}
	if o.Interval == 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := &Stack{Opts: o, Upstreams: map[string]*upstream.Server{}}
	s = st
	defer func() {
		// A failed start returns a nil Stack: close what was started
		// through st, which the named result no longer holds.
		if err != nil {
			st.Close()
		}
	}()
	s.Git, err = gitserver.Start("", gitserver.Options{})
	if err != nil {
		return nil, err
	}
	s.cleanup = append(s.cleanup, s.Git.Close)
	if s.Repo, err = s.Git.CreateRepo("gateways"); err != nil {
		return nil, err
	}
	if o.Files != nil {
		err = s.Repo.WriteFiles(o.Files)
	} else {
		err = s.copyExample()
	}
	if err == nil && o.Extra != nil {
		err = s.Repo.WriteFiles(o.Extra)
	}
	if err != nil {
		return nil, err
	}
	if _, err = s.Repo.Commit("Initial gateway configuration"); err != nil {
		return nil, err
	}
	for name, addr := range o.Upstreams {
		u, err := upstream.StartOn(name, addr)
		if err != nil {
			return nil, fmt.Errorf("upstream %s on %s: %w", name, addr, err)
		}
		s.Upstreams[name] = u
		s.cleanup = append(s.cleanup, u.Close)
	}
	if s.Opts.StateDir == "" {
		dir, err := os.MkdirTemp("", "gitxds-state-")
		if err != nil {
			return nil, err
		}
		s.Opts.StateDir = dir
		s.cleanup = append(s.cleanup, func() { os.RemoveAll(dir) })
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	if err := s.StartDaemon(""); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) copyExample() error {
	root := s.Opts.Root
	if root == "" {
		var err error
		if root, err = FindRoot(); err != nil {
			return err
		}
	}
	for _, dir := range []string{"repo-layout", "overlays"} {
		if err := s.Repo.CopyTree(filepath.Join(root, dir), dir); err != nil {
			return err
		}
	}
	return nil
}

// FindRoot finds the gitxds checkout from the working directory upwards.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module gitxds.dev/gitxds\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the gitxds repository (no go.mod of gitxds.dev/gitxds above the working directory)")
		}
		dir = parent
	}
}

// StartDaemon starts gitxds (again) on the stack's state directory. repoURL
// overrides the repository URL (e.g. an unreachable one); xdsAddr is
// 127.0.0.1:0 unless the previous daemon's address should be reused.
func (s *Stack) StartDaemon(repoURL string) error {
	return s.StartDaemonAt(repoURL, "127.0.0.1:0")
}

// StartDaemonAt is StartDaemon on a given xDS address.
func (s *Stack) StartDaemonAt(repoURL, xdsAddr string) error {
	if repoURL == "" {
		repoURL = s.Repo.URL()
	}
	d, err := daemon.Start(s.ctx, daemon.Config{
		Repo: repoURL, Ref: "main", Path: s.Opts.Overlay, Interval: s.Opts.Interval,
		XDSAddress: xdsAddr, AdminAddress: "127.0.0.1:0", StateDir: s.Opts.StateDir,
		Log: s.Opts.Log, Translate: s.Opts.Translate, NewQuerier: s.Opts.NewQuerier, ScopeDrain: s.Opts.ScopeDrain,
		Notify: s.Opts.Notify,
		XDSTLS: s.Opts.XDSTLS, NodeIdentity: s.Opts.NodeIdentity, Kube: s.Opts.Kube,
	})
	if err != nil {
		return err
	}
	s.Daemon = d
	return nil
}

// StopDaemon stops gitxds, as a kill would (the state directory stays).
func (s *Stack) StopDaemon() {
	if s.Daemon != nil {
		s.Daemon.Close()
		s.Daemon = nil
	}
}

// Close stops everything.
func (s *Stack) Close() {
	s.StopDaemon()
	if s.cancel != nil {
		s.cancel()
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

// Client is a real gRPC-Go xDS client of this stack's gitxds.
func (s *Stack) Client(nodeID string, labels map[string]string) (*xdsclient.Client, error) {
	return xdsclient.New(xdsclient.Options{ServerAddr: s.Daemon.XDSAddr, NodeID: nodeID, Metadata: labels, Insecure: true})
}

// Commit writes files (a nil value removes the file) and commits them, then
// asks gitxds to reconcile at once (as a webhook would). It returns the
// revision gitxds will report.
func (s *Stack) Commit(msg string, files map[string]*string) (string, error) {
	write := map[string]string{}
	for name, content := range files {
		if content == nil {
			if err := s.Repo.Remove(name); err != nil {
				return "", err
			}
			continue
		}
		write[name] = *content
	}
	if err := s.Repo.WriteFiles(write); err != nil {
		return "", err
	}
	sha, err := s.Repo.Commit(msg)
	if err != nil {
		return "", err
	}
	s.Trigger()
	return "main@sha1:" + sha, nil
}

// Revert reverts a commit (given as a revision or SHA) and returns the new
// revision.
func (s *Stack) Revert(rev string) (string, error) {
	sha, err := s.Repo.Revert(strings.TrimPrefix(rev, "main@sha1:"))
	if err != nil {
		return "", err
	}
	s.Trigger()
	return "main@sha1:" + sha, nil
}

// Trigger asks the daemon to reconcile now.
func (s *Stack) Trigger() {
	if s.Daemon != nil {
		s.Daemon.Reconciler.Trigger("test")
	}
}

// Status is the daemon's status.
func (s *Stack) Status() status.Status { return s.Daemon.Reconciler.Status() }

// WaitStatus polls the status until cond holds or timeout.
func (s *Stack) WaitStatus(timeout time.Duration, what string, cond func(status.Status) bool) (status.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st := s.Status()
		if cond(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("timed out after %s waiting for %s; status: attempted=%s applied=%s ready=%s",
				timeout, what, st.LastAttemptedRevision, st.LastAppliedRevision, condString(st.Get(status.Ready)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitApplied waits until rev is the last applied revision.
func (s *Stack) WaitApplied(timeout time.Duration, rev string) (status.Status, error) {
	return s.WaitStatus(timeout, "applied "+rev, func(st status.Status) bool { return st.LastAppliedRevision == rev })
}

// WaitAttempted waits until rev was attempted and its outcome is known
// (Reconciling is no longer True).
func (s *Stack) WaitAttempted(timeout time.Duration, rev string) (status.Status, error) {
	return s.WaitStatus(timeout, "attempted "+rev, func(st status.Status) bool {
		c := st.Get(status.Reconciling)
		return st.LastAttemptedRevision == rev && (c == nil || c.Status != metav1.ConditionTrue)
	})
}

func condString(c *metav1.Condition) string {
	if c == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s/%s %q", c.Status, c.Reason, c.Message)
}

// FreeAddr returns a free loopback address.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}
