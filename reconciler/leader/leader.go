// Package leader elects one gitxds replica with a Kubernetes Lease
// (client-go's leaderelection). The leader polls Git and drives rollouts;
// the other replicas serve xDS from the state the leader persists.
//
// An identity is "<name>@<admin address>", so a follower can forward what
// only the leader may do (webhooks, reconcile and rollout controls) to it.
//
// Each leadership has an epoch (Elector.Epoch) that strictly increases
// from one leadership to the next, across replicas and restarts: the
// leader writes it with every decision, and a write of a lower epoch is
// refused (package kubestate), so that a paused ex-leader, still believing
// it leads, cannot overwrite its successor's.
package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
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
	// MinEpoch, when set, is an epoch a new leadership must exceed besides
	// the Lease's own count: the epoch last written with a decision (the
	// FleetRollout's), so that a deleted and recreated Lease does not
	// start epochs below it again.
	MinEpoch func(ctx context.Context) (int64, error)
}

// EpochAnnotation on the Lease is the epoch of the latest leadership.
const EpochAnnotation = "gitxds.dev/epoch"

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
	epoch    int64
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

// Run campaigns until ctx is done or leadership, once won, is lost. Once
// the Lease is won, Run claims the leadership's epoch (Epoch), then runs
// lead while this replica leads; its context ends when leadership ends (it
// must return then). Run returns after lead has returned. A replica that
// lost the Lease, or could not claim an epoch, does not campaign again:
// leadership state lives in its process (the rollout engine), so it
// should exit and start afresh.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan struct{})
	go func() { defer close(runDone); e.le.Run(ctx) }()
	select {
	case lctx := <-e.leading:
		epoch, err := e.claimEpoch(lctx)
		if err != nil {
			e.o.Log.Error("leader election: no epoch for this leadership; giving the lease up", "identity", e.o.Identity, "error", err)
			cancel()
			<-runDone
			return
		}
		e.mu.Lock()
		e.epoch = epoch
		e.mu.Unlock()
		e.o.Log.Info("leader election: leadership epoch", "identity", e.o.Identity, "epoch", epoch)
		lead(lctx)
		<-runDone
	case <-runDone:
	}
}

// claimEpoch gives the leadership just won its epoch: one more than the
// Lease's EpochAnnotation (and than its leaseTransitions and MinEpoch,
// should the annotation be gone), written to the Lease with the
// resourceVersion read, in the same version that names this replica the
// holder.
//
// Why not leaseTransitions alone: client-go counts a transition only when
// the holder's identity changes, so a process that restarts under the
// same identity (a container restart in the same pod) takes the Lease
// back with the same count as its predecessor. The annotation is bumped
// by every acquisition instead, and only by the holder: the Lease's
// optimistic concurrency orders acquisitions, so each later leadership
// writes a higher number, and an ex-leader that resumes after another
// took the Lease finds another holder and claims nothing. client-go's own
// renewals keep the annotation: they update the Lease object they last
// read (a conflict makes them read it again), changing only its spec.
func (e *Elector) claimEpoch(ctx context.Context) (int64, error) {
	leases := e.o.Client.CoordinationV1().Leases(e.o.Namespace)
	var floor int64
	if e.o.MinEpoch != nil {
		f, err := e.o.MinEpoch(ctx)
		if err != nil {
			return 0, fmt.Errorf("reading the last epoch written: %w", err)
		}
		floor = f
	}
	var last error
	for attempt := 0; attempt < 10; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("%w (last: %v)", context.Cause(ctx), last)
			case <-time.After(e.o.RetryPeriod / 10):
			}
		}
		l, err := leases.Get(ctx, e.o.Name, metav1.GetOptions{})
		if err != nil {
			last = err
			continue
		}
		if h := l.Spec.HolderIdentity; h == nil || *h != e.o.Identity {
			holder := ""
			if h != nil {
				holder = *h
			}
			return 0, fmt.Errorf("lease %s/%s is held by %q, not this replica", e.o.Namespace, e.o.Name, holder)
		}
		epoch := floor
		cur, annotated := l.Annotations[EpochAnnotation]
		if v, err := strconv.ParseInt(cur, 10, 64); err == nil {
			epoch = max(epoch, v)
		}
		if t := l.Spec.LeaseTransitions; t != nil {
			epoch = max(epoch, int64(*t))
		}
		epoch++
		next := strconv.FormatInt(epoch, 10)
		if annotated {
			// A JSON patch whose tests make it a compare-and-swap of the
			// holder and the epoch alone: client-go's renewals, which
			// change the Lease every RetryPeriod, do not make it fail.
			path := "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(EpochAnnotation, "~", "~0"), "/", "~1")
			patch, _ := json.Marshal([]map[string]string{
				{"op": "test", "path": "/spec/holderIdentity", "value": e.o.Identity},
				{"op": "test", "path": path, "value": cur},
				{"op": "replace", "path": path, "value": next},
			})
			_, err = leases.Patch(ctx, e.o.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
		} else {
			// The first leadership (or the annotation was removed): an
			// update of the version read.
			if l.Annotations == nil {
				l.Annotations = map[string]string{}
			}
			l.Annotations[EpochAnnotation] = next
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil {
			// The holder or the epoch changed, a renewal came in between
			// (a conflict of the update), or a passing error: read again.
			last = err
			continue
		}
		return epoch, nil
	}
	return 0, fmt.Errorf("lease %s/%s: %w", e.o.Namespace, e.o.Name, last)
}

// Epoch is the epoch of this replica's leadership, 0 before it leads. It
// is set before lead runs.
func (e *Elector) Epoch() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epoch
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
