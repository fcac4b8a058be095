package kubestate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"gitxds.dev/gitxds/reconciler/rollout"
)

// Reports returns every replica's report of this installation, by name:
// from the informer's cache after Start, else from the API server.
func (b *Board) Reports(ctx context.Context) ([]rollout.ReplicaReport, error) {
	var items []*unstructured.Unstructured
	if b.started.Load() {
		objs, err := b.reports.Lister().ByNamespace(b.o.Namespace).List(labels.Everything())
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				return nil, fmt.Errorf("kubestate: ReplicaReport cache holds a %T", o)
			}
			items = append(items, u)
		}
	} else {
		l, err := b.o.Client.Resource(ReplicaReports).Namespace(b.o.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.Set{InstallationLabel: b.o.Name}.String()})
		if err != nil {
			return nil, fmt.Errorf("kubestate: list ReplicaReports in %s: %w", b.o.Namespace, err)
		}
		for i := range l.Items {
			items = append(items, &l.Items[i])
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].GetName() < items[j].GetName() })
	out := make([]rollout.ReplicaReport, 0, len(items))
	for _, u := range items {
		var r rollout.ReplicaReport
		if err := fromStatus(u, &r); err != nil {
			// One replica's unreadable report must not hide the others:
			// the leader counts that replica as silent (stale).
			b.o.Log.Warn("kubestate: unreadable ReplicaReport", "name", u.GetName(), "error", err)
			continue
		}
		// The object's name is the replica: a report cannot speak for
		// another.
		r.Replica = u.GetName()
		out = append(out, r)
	}
	return out, nil
}

// PutReport writes this replica's report (r.Replica must be Options.Replica
// or empty). A report equal to the last one written is not written again.
// The report is this replica's alone: a conflicting write (an edit by
// hand, an earlier process of the same replica) is read and written over.
func (b *Board) PutReport(ctx context.Context, r rollout.ReplicaReport) error {
	if b.o.Replica == "" {
		return errors.New("kubestate: PutReport: the Board has no Replica name")
	}
	if r.Replica == "" {
		r.Replica = b.o.Replica
	}
	if r.Replica != b.o.Replica {
		return fmt.Errorf("kubestate: PutReport: replica %q cannot write the report of %q", b.o.Replica, r.Replica)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastReport != nil && reflect.DeepEqual(*b.lastReport, r) {
		return nil
	}
	res := b.o.Client.Resource(ReplicaReports).Namespace(b.o.Namespace)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		u, err := b.reportObject(r, b.reportRV)
		if err != nil {
			return err
		}
		b.reportWrites.Add(1)
		var out *unstructured.Unstructured
		if b.reportRV == "" {
			out, err = res.Create(ctx, u, metav1.CreateOptions{FieldManager: FieldManager})
		} else {
			out, err = res.Update(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager})
		}
		if err == nil {
			b.reportRV = out.GetResourceVersion()
			b.lastReport = &r
			return nil
		}
		if !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("kubestate: write ReplicaReport %s/%s: %w", b.o.Namespace, b.o.Replica, err)
		}
		cur, gerr := res.Get(ctx, b.o.Replica, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			b.reportRV = ""
		case gerr != nil:
			return fmt.Errorf("kubestate: write ReplicaReport %s/%s: %w; reading it: %w", b.o.Namespace, b.o.Replica, err, gerr)
		default:
			b.reportRV = cur.GetResourceVersion()
		}
	}
	return fmt.Errorf("kubestate: ReplicaReport %s/%s: still conflicting after %d attempts", b.o.Namespace, b.o.Replica, maxAttempts)
}

// reportObject is this replica's ReplicaReport holding r, at
// resourceVersion rv.
func (b *Board) reportObject(r rollout.ReplicaReport, rv string) (*unstructured.Unstructured, error) {
	st, err := toStatus(r)
	if err != nil {
		return nil, fmt.Errorf("kubestate: ReplicaReport: %w", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetAPIVersion(Group + "/" + Version)
	u.SetKind(ReplicaReportKind)
	u.SetNamespace(b.o.Namespace)
	u.SetName(b.o.Replica)
	u.SetLabels(map[string]string{partOfLabel: partOf, InstallationLabel: b.o.Name})
	if b.o.Owner != nil {
		u.SetOwnerReferences([]metav1.OwnerReference{*b.o.Owner})
	}
	u.SetResourceVersion(rv)
	return u, nil
}
