// Package leader elects one gitxds replica with a Kubernetes Lease
// (client-go's leaderelection). The leader polls Git and drives rollouts;
// the other replicas serve xDS from the state the leader persists.
//
// An identity is "<name>@<admin address>", so a follower can forward what
// only the leader may do (webhooks, reconcile and rollout controls) to it.
package leader

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults, as Kubernetes controllers use.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Options of an election.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string // of the Lease
	// Identity of this replica: Identity(name, adminAddress).
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
}

// Identity is the identity of a replica called name whose admin API is
// reachable at adminAddress (host:port).
func Identity(name, adminAddress string) string { return name + "@" + adminAddress }

// AdminAddress is the admin address in an identity, or "".
func AdminAddress(identity string) string {
	_, addr, _ := strings.Cut(identity, "@")
	return addr
}

// Elector campaigns for the Lease.
type Elector struct {
	o  Options
	le *leaderelection.LeaderElector

	leading chan context.Context // the leadership's context, once won

	mu       sync.Mutex
	leader   string
	isLeader bool
}

// New checks o.
func New(o Options) (*Elector, error) {
	if o.Client == nil || o.Namespace == "" || o.Name == "" || o.Identity == "" {
		return nil, errors.New("leader: client, namespace, name and identity are required")
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	e := &Elector{o: o, leading: make(chan context.Context, 1)}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		Client:     o.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.RenewDeadline,
		RetryPeriod:     o.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.started,
			OnStoppedLeading: e.stopped,
			OnNewLeader:      e.newLeader,
		},
	})
	if err != nil {
		return nil, err
	}
	e.le = le
	return e, nil
}

// Run campaigns until ctx is done or leadership, once won, is lost. lead
// runs while this replica leads; its context ends when leadership ends (it
// must return then). Run returns after lead has returned. A replica that
// lost the Lease does not campaign again: leadership state lives in its
// process (the rollout engine), so it should exit and start afresh.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	runDone := make(chan struct{})
	go func() { defer close(runDone); e.le.Run(ctx) }()
	select {
	case lctx := <-e.leading:
		lead(lctx)
		<-runDone
	case <-runDone:
	}
}

// started is called (in its own goroutine) when the Lease is won; lctx
// ends with the leadership.
func (e *Elector) started(lctx context.Context) {
	e.mu.Lock()
	e.isLeader = true
	e.mu.Unlock()
	e.o.Log.Info("leader election: this replica leads", "identity", e.o.Identity, "lease", e.o.Namespace+"/"+e.o.Name)
	select {
	case e.leading <- lctx:
	default:
	}
}

func (e *Elector) stopped() {
	e.mu.Lock()
	was := e.isLeader
	e.isLeader = false
	e.mu.Unlock()
	if was {
		e.o.Log.Warn("leader election: leadership ended", "identity", e.o.Identity)
	}
}

func (e *Elector) newLeader(identity string) {
	e.mu.Lock()
	e.leader = identity
	e.mu.Unlock()
	if identity != e.o.Identity {
		e.o.Log.Info("leader election: following", "leader", identity)
	}
}

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.isLeader
}

// Leader is the identity of the current leader as last observed, or "".
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Identity of this replica.
func (e *Elector) Identity() string { return e.o.Identity }
