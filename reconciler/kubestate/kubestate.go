// Package kubestate keeps the fleet-wide rollout of a highly available
// gitxds (package rollout's Board) in the Kubernetes API, as two custom
// resources of group gitxds.dev/v1alpha1 (deploy/crds):
//
//   - FleetRollout, one per installation, named after the leader-election
//     Lease: the rollout as the leader decided it (rollout.FleetState in
//     .status). Only the leader writes it, fenced by its epoch and by the
//     resourceVersion it last read or wrote (PutRollout).
//   - ReplicaReport, one per replica, named after the replica (the pod):
//     what its xDS nodes did with the rollout (rollout.ReplicaReport in
//     .status). Only that replica writes it.
//
// The objects have no spec: their writer owns all of them, and .status
// holds the Go struct as JSON (unknown fields are preserved, so the rollout
// side can add fields without a new CRD), with a few fields typed in the
// schema for `kubectl get`'s columns and the API server's own epoch check.
// Every replica watches both (an informer each, in the namespace of the
// Lease): Changes is signalled on any change, Reports reads the cache.
//
// Writes are bounded by stages and replicas, never by nodes: the leader
// writes the FleetRollout when the rollout moves (start, each stage, bake,
// end: about 2 per stage), and each replica writes its report when what
// it reports changes (applied a stage, its nodes ACKed, a NACK) and on its
// heartbeat. A rollout of S stages over R replicas is then about
// 2·S + R·S·k writes, k the few changes a replica sees per stage (about
// 200 for 4 stages and 10 replicas, whether they serve 100 or 10,000
// nodes). A report holds counts and at most a few node names.
package kubestate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"gitxds.dev/gitxds/reconciler/rollout"
)

// The API of the custom resources (deploy/crds).
const (
	Group   = "gitxds.dev"
	Version = "v1alpha1"

	FleetRolloutKind  = "FleetRollout"
	ReplicaReportKind = "ReplicaReport"

	// InstallationLabel is set on every ReplicaReport to the name of the
	// FleetRollout (the Lease) it reports on, so that two installations
	// can share a namespace.
	InstallationLabel = "gitxds.dev/installation"
	// FieldManager is the manager of gitxds's writes.
	FieldManager = "gitxds"
)

// The resources.
var (
	FleetRollouts  = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "fleetrollouts"}
	ReplicaReports = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "replicareports"}
)

// Options of a Board.
type Options struct {
	Client dynamic.Interface
	// Namespace of the objects: the Lease's.
	Namespace string
	// Name of the FleetRollout: the Lease's.
	Name string
	// Replica is the name of this replica's ReplicaReport (the pod name;
	// a DNS subdomain).
	Replica string
	// Owner, when set, owns this replica's ReplicaReport (its Pod), so
	// that Kubernetes deletes the report with the pod.
	Owner *metav1.OwnerReference
	Log   *slog.Logger
}

// Board is a rollout.Board on the Kubernetes API. Until Start, Changes is
// never signalled; until WaitSynced, reads go to the API server, and after
// it they come from the informers' caches.
type Board struct {
	o       Options
	changes chan struct{}

	started   atomic.Bool
	rollouts  informers.GenericInformer
	reports   informers.GenericInformer
	startOnce sync.Once
	runCtx    context.Context

	// mu guards the fencing state of PutRollout and the last report.
	mu sync.Mutex
	// rolloutRV is the resourceVersion of the FleetRollout this Board
	// last read or wrote, "" before; seenEpoch the highest epoch read.
	rolloutRV string
	seenEpoch int64
	// reportRV is the resourceVersion of this replica's report as last
	// written; lastReport what was written.
	reportRV   string
	lastReport *rollout.ReplicaReport

	// writes counts the writes sent to the API server, by kind.
	rolloutWrites, reportWrites atomic.Int64
}

var _ rollout.Board = (*Board)(nil)

// New checks o. Nothing is read before the first call.
func New(o Options) (*Board, error) {
	if o.Client == nil || o.Namespace == "" || o.Name == "" {
		return nil, errors.New("kubestate: client, namespace and name are required")
	}
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return nil, fmt.Errorf("kubestate: FleetRollout name %q: %v", o.Name, errs)
	}
	if len(validation.IsValidLabelValue(o.Name)) > 0 {
		return nil, fmt.Errorf("kubestate: FleetRollout name %q is not a valid label value", o.Name)
	}
	if o.Replica != "" {
		if errs := validation.IsDNS1123Subdomain(o.Replica); len(errs) > 0 {
			return nil, fmt.Errorf("kubestate: ReplicaReport name %q: %v", o.Replica, errs)
		}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Board{o: o, changes: make(chan struct{}, 1)}, nil
}

// Check lists both resources once: an error says when their CRDs are not
// installed or this replica may not read them (RBAC), before anything
// waits on an informer that would retry forever.
func (b *Board) Check(ctx context.Context) error {
	for _, gvr := range []schema.GroupVersionResource{FleetRollouts, ReplicaReports} {
		_, err := b.o.Client.Resource(gvr).Namespace(b.o.Namespace).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("kubestate: the API server does not serve %s.%s/%s: install the CRDs of deploy/crds (kubectl apply -k deploy/crds, or serve --install-crds): %w",
				gvr.Resource, gvr.Group, gvr.Version, err)
		case apierrors.IsForbidden(err):
			return fmt.Errorf("kubestate: may not list %s in %s (the Role of deploy/base/gitxds/rbac.yaml grants it): %w", gvr.Resource, b.o.Namespace, err)
		case err != nil:
			return fmt.Errorf("kubestate: list %s in %s: %w", gvr.Resource, b.o.Namespace, err)
		}
	}
	return nil
}

// Start runs the informers of both resources until ctx ends; reads come
// from their caches once WaitSynced has returned nil, and from the API
// server again once ctx ends. Start is meant to be called once.
func (b *Board) Start(ctx context.Context) {
	b.startOnce.Do(func() {
		b.rollouts = dynamicinformer.NewFilteredDynamicInformer(b.o.Client, FleetRollouts, b.o.Namespace, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
			func(lo *metav1.ListOptions) {
				lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", b.o.Name).String()
			})
		b.reports = dynamicinformer.NewFilteredDynamicInformer(b.o.Client, ReplicaReports, b.o.Namespace, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
			func(lo *metav1.ListOptions) {
				lo.LabelSelector = labels.Set{InstallationLabel: b.o.Name}.String()
			})
		h := cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { b.signal() },
			UpdateFunc: func(any, any) { b.signal() },
			DeleteFunc: func(any) { b.signal() },
		}
		for _, inf := range []informers.GenericInformer{b.rollouts, b.reports} {
			if _, err := inf.Informer().AddEventHandler(h); err != nil {
				b.o.Log.Error("kubestate: informer handler", "error", err)
			}
			go inf.Informer().RunWithContext(ctx)
		}
		// Stopped informers keep their last state: read the API server again.
		context.AfterFunc(ctx, func() { b.started.Store(false) })
		b.runCtx = ctx
	})
}

// WaitSynced waits until the informers Start started have listed both
// resources (or ctx ends first); from then on reads come from their
// caches.
func (b *Board) WaitSynced(ctx context.Context) error {
	if b.rollouts == nil {
		return errors.New("kubestate: WaitSynced before Start")
	}
	if !cache.WaitForCacheSync(ctx.Done(), b.rollouts.Informer().HasSynced, b.reports.Informer().HasSynced) {
		return fmt.Errorf("kubestate: informers of %s and %s not synced: %w", FleetRollouts.Resource, ReplicaReports.Resource, context.Cause(ctx))
	}
	b.started.Store(true)
	if b.runCtx.Err() != nil { // stopped meanwhile
		b.started.Store(false)
	}
	return nil
}

// Changes is signalled, coalesced, when the FleetRollout or a report
// changes (after Start).
func (b *Board) Changes() <-chan struct{} { return b.changes }

func (b *Board) signal() {
	select {
	case b.changes <- struct{}{}:
	default:
	}
}

// Writes are the writes this Board sent to the API server: of the
// FleetRollout and of the report (successful or not).
func (b *Board) Writes() (rollouts, reports int64) {
	return b.rolloutWrites.Load(), b.reportWrites.Load()
}
