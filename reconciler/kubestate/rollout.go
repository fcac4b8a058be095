package kubestate

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"gitxds.dev/gitxds/reconciler/rollout"
)

// maxAttempts bounds PutRollout's and PutReport's retries after a
// conflict that does not fence them (an older epoch's write, a deleted
// object).
const maxAttempts = 4

// Rollout returns the FleetRollout's state: from the informer's cache
// after Start, else from the API server. What it reads becomes what
// PutRollout writes over (when newer than what this Board last saw).
func (b *Board) Rollout(ctx context.Context) (rollout.FleetState, bool, error) {
	var u *unstructured.Unstructured
	if b.started.Load() {
		o, err := b.rollouts.Lister().ByNamespace(b.o.Namespace).Get(b.o.Name)
		if apierrors.IsNotFound(err) {
			return rollout.FleetState{}, false, nil
		}
		if err != nil {
			return rollout.FleetState{}, false, err
		}
		var ok bool
		if u, ok = o.(*unstructured.Unstructured); !ok {
			return rollout.FleetState{}, false, fmt.Errorf("kubestate: FleetRollout cache holds a %T", o)
		}
	} else {
		var err error
		u, err = b.o.Client.Resource(FleetRollouts).Namespace(b.o.Namespace).Get(ctx, b.o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return rollout.FleetState{}, false, nil
		}
		if err != nil {
			return rollout.FleetState{}, false, fmt.Errorf("kubestate: get FleetRollout %s/%s: %w", b.o.Namespace, b.o.Name, err)
		}
	}
	s, err := fleetState(u)
	if err != nil {
		return rollout.FleetState{}, false, err
	}
	b.mu.Lock()
	b.observe(u.GetResourceVersion(), s.Epoch)
	b.mu.Unlock()
	return s, true, nil
}

// observe records a read of the FleetRollout at resourceVersion rv and
// epoch: the highest epoch seen fences PutRollout; rv becomes the version
// written over when this Board has none or rv is newer (a cache can lag
// behind this Board's own last write). Resource versions compare as
// integers (apimachinery's resourceversion, KEP-5504); one that does not
// parse is not taken. b.mu is held.
func (b *Board) observe(rv string, epoch int64) {
	b.seenEpoch = max(b.seenEpoch, epoch)
	if b.rolloutRV == "" {
		b.rolloutRV = rv
		return
	}
	if c, err := resourceversion.CompareResourceVersion(rv, b.rolloutRV); err == nil && c > 0 {
		b.rolloutRV = rv
	}
}

// PutRollout writes s, fenced:
//
//   - a state of a lower epoch than one this Board read is refused
//     without a write;
//   - the write is an Update with the resourceVersion this Board last read
//     or wrote (a Create when there is no object, a read first when it has
//     seen none): the API server refuses it if anyone wrote since;
//   - after such a conflict it reads the object again: written at an epoch
//     ≥ s.Epoch, by another writer, it returns rollout.ErrFenced (wrapped)
//     and every later call does too; written at a lower epoch (an
//     ex-leader that wrote before it was fenced), it writes over it: a new
//     leader takes over by reading then writing;
//   - the API server itself refuses a lower epoch than the stored one (a
//     validation rule of the CRD), whoever writes, with whatever
//     resourceVersion.
func (b *Board) PutRollout(ctx context.Context, s rollout.FleetState) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := b.o.Client.Resource(FleetRollouts).Namespace(b.o.Namespace)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if b.seenEpoch > s.Epoch {
			return b.fenced(s.Epoch, "")
		}
		if b.rolloutRV == "" {
			cur, err := res.Get(ctx, b.o.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				u, err := b.rolloutObject(s, "")
				if err != nil {
					return err
				}
				b.rolloutWrites.Add(1)
				created, err := res.Create(ctx, u, metav1.CreateOptions{FieldManager: FieldManager})
				if apierrors.IsAlreadyExists(err) {
					continue // read it, then write over it
				}
				if err != nil {
					return fmt.Errorf("kubestate: create FleetRollout %s/%s: %w", b.o.Namespace, b.o.Name, err)
				}
				b.wrote(created.GetResourceVersion(), s.Epoch)
				return nil
			case err != nil:
				return fmt.Errorf("kubestate: get FleetRollout %s/%s: %w", b.o.Namespace, b.o.Name, err)
			}
			st, err := fleetState(cur)
			if err != nil {
				return err
			}
			b.observe(cur.GetResourceVersion(), st.Epoch)
			continue
		}
		u, err := b.rolloutObject(s, b.rolloutRV)
		if err != nil {
			return err
		}
		b.rolloutWrites.Add(1)
		updated, err := res.Update(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil {
			b.wrote(updated.GetResourceVersion(), s.Epoch)
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			return fmt.Errorf("kubestate: update FleetRollout %s/%s: %w", b.o.Namespace, b.o.Name, err)
		}
		// Someone wrote (or deleted it) since this Board's last read or
		// write, or the server refused a lower epoch: read it again.
		stale := b.rolloutRV
		cur, gerr := res.Get(ctx, b.o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) {
			b.rolloutRV = ""
			continue
		}
		if gerr != nil {
			return fmt.Errorf("kubestate: update FleetRollout %s/%s: %w; reading it again: %w", b.o.Namespace, b.o.Name, err, gerr)
		}
		st, cerr := fleetState(cur)
		if cerr != nil {
			return cerr
		}
		if st.Epoch >= s.Epoch {
			b.seenEpoch = max(b.seenEpoch, st.Epoch)
			return b.fenced(s.Epoch, fmt.Sprintf("; written at resourceVersion %s, after this writer's %s", cur.GetResourceVersion(), stale))
		}
		if apierrors.IsInvalid(err) {
			return fmt.Errorf("kubestate: update FleetRollout %s/%s: %w", b.o.Namespace, b.o.Name, err)
		}
		// An older leadership's write: take over.
		b.observe(cur.GetResourceVersion(), st.Epoch)
		b.rolloutRV = cur.GetResourceVersion()
	}
	return fmt.Errorf("kubestate: FleetRollout %s/%s: still conflicting after %d attempts", b.o.Namespace, b.o.Name, maxAttempts)
}

// wrote records a successful write. b.mu is held.
func (b *Board) wrote(rv string, epoch int64) {
	b.rolloutRV = rv
	b.seenEpoch = max(b.seenEpoch, epoch)
}

// fenced is the ErrFenced of a writer at epoch. b.mu is held.
func (b *Board) fenced(epoch int64, detail string) error {
	return fmt.Errorf("kubestate: FleetRollout %s/%s is at epoch %d, this writer's is %d%s: %w",
		b.o.Namespace, b.o.Name, b.seenEpoch, epoch, detail, rollout.ErrFenced)
}

// rolloutObject is the FleetRollout holding s, at resourceVersion rv.
func (b *Board) rolloutObject(s rollout.FleetState, rv string) (*unstructured.Unstructured, error) {
	st, err := toStatus(s)
	if err != nil {
		return nil, fmt.Errorf("kubestate: FleetRollout: %w", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetAPIVersion(Group + "/" + Version)
	u.SetKind(FleetRolloutKind)
	u.SetNamespace(b.o.Namespace)
	u.SetName(b.o.Name)
	u.SetLabels(map[string]string{partOfLabel: partOf})
	u.SetResourceVersion(rv)
	return u, nil
}

func fleetState(u *unstructured.Unstructured) (rollout.FleetState, error) {
	var s rollout.FleetState
	if err := fromStatus(u, &s); err != nil {
		return s, fmt.Errorf("kubestate: FleetRollout %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return s, nil
}

// StoredEpoch is the epoch of the FleetRollout in the API server, 0 when
// there is none: a new leadership's epoch must exceed it
// (leader.Options.MinEpoch).
func (b *Board) StoredEpoch(ctx context.Context) (int64, error) {
	u, err := b.o.Client.Resource(FleetRollouts).Namespace(b.o.Namespace).Get(ctx, b.o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("kubestate: get FleetRollout %s/%s: %w", b.o.Namespace, b.o.Name, err)
	}
	s, err := fleetState(u)
	return s.Epoch, err
}
