// Package kubeevents records what becomes of each revision as Kubernetes
// Events (events.k8s.io/v1), so that `kubectl events` and `kubectl describe`
// show them next to the cluster's own: a revision attempted, each rollout
// stage started, a rollout succeeded, a rollout rolled back, a revision
// refused (the reasons are notify's Kinds).
//
// An Events is a notify.Provider: the daemon hands it to notify.New with
// the --notify-config providers, so it gets their queue and worker (Notify
// never blocks a reconcile or a rollout; a full queue drops the oldest
// event), their retries with backoff and their delivery metrics.
//
// The Events regard the Lease of leader election (there is no gitxds API
// object to regard yet); Options.Regarding names another object.
package kubeevents

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"gitxds.dev/gitxds/reconciler/notify"
)

// Actions of the Events (events.k8s.io/v1 requires one: what gitxds did).
const (
	ActionRollout  = "Rollout"
	ActionRollback = "Rollback"
	ActionRefuse   = "Refuse"
)

// Controller is the reportingController of every Event.
const Controller = "gitxds.dev/gitxds"

// AnnotationRevision carries the revision on every Event, for selection.
const AnnotationRevision = "gitxds.dev/revision"

// maxNote is the longest note the API server accepts (1 kB).
const maxNote = 1024

// LeaseReference is the Lease of leader election, as an Event's regarding.
func LeaseReference(namespace, name string) corev1.ObjectReference {
	return corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Namespace: namespace, Name: name}
}

// Options of an Events.
type Options struct {
	Client kubernetes.Interface
	// Regarding is the object the Events are about; its namespace is theirs.
	Regarding corev1.ObjectReference
	// Instance is this replica (reportingInstance), e.g. the pod name.
	Instance string
	// Now stamps the Events whose notify.Event has no time (default
	// time.Now).
	Now func() time.Time
}

// Events records notify.Events as Kubernetes Events. It is a
// notify.Provider.
type Events struct {
	o Options
}

// New checks o.
func New(o Options) (*Events, error) {
	if o.Client == nil || o.Regarding.Namespace == "" || o.Regarding.Name == "" || o.Regarding.Kind == "" {
		return nil, errors.New("kubeevents: a client and a regarding object (kind, namespace, name) are required")
	}
	if o.Instance == "" {
		o.Instance = "gitxds"
	}
	if len(o.Instance) > 128 {
		o.Instance = o.Instance[:128]
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Events{o: o}, nil
}

// Name identifies the provider in logs and metrics.
func (k *Events) Name() string {
	return "kubernetes:" + k.o.Regarding.Namespace + "/" + k.o.Regarding.Name
}

// Kind is an Event's type, reason and action for e. The reason is
// e.Kind(), as the log line names it.
func Kind(e notify.Event) (eventType, reason, action string) {
	eventType = corev1.EventTypeNormal
	if e.State == notify.Failure {
		eventType = corev1.EventTypeWarning
	}
	k := e.Kind()
	switch k {
	case notify.RolledBack:
		action = ActionRollback
	case notify.RevisionRefused:
		action = ActionRefuse
	default:
		action = ActionRollout
	}
	return eventType, string(k), action
}

// Note is the Event's message: the revision, the stage and what happened.
func Note(e notify.Event) string {
	s := e.Revision
	if e.Stage != "" {
		s += " stage " + e.Stage
	}
	msg := e.Message
	if msg == "" {
		msg = string(e.State)
	}
	s += ": " + msg
	if len(s) > maxNote {
		s = s[:maxNote-len("…")]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// Event is the Kubernetes Event recorded for e.
func (k *Events) Event(e notify.Event) *eventsv1.Event {
	t := e.Time
	if t.IsZero() {
		t = k.o.Now()
	}
	typ, reason, action := Kind(e)
	ns := k.o.Regarding.Namespace
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// As client-go's events recorder names them.
			Name:        k.o.Regarding.Name + "." + strconv.FormatInt(t.UnixNano(), 16),
			Namespace:   ns,
			Annotations: map[string]string{AnnotationRevision: e.Revision},
		},
		EventTime:           metav1.NewMicroTime(t),
		ReportingController: Controller,
		ReportingInstance:   k.o.Instance,
		Action:              action,
		Reason:              reason,
		Regarding:           k.o.Regarding,
		Note:                Note(e),
		Type:                typ,
	}
}

// Send creates the Event of e. Errors a retry cannot fix (forbidden,
// invalid, a missing namespace) are permanent.
func (k *Events) Send(ctx context.Context, e notify.Event) error {
	ev := k.Event(e)
	_, err := k.o.Client.EventsV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.IsForbidden(err), apierrors.IsInvalid(err), apierrors.IsBadRequest(err),
		apierrors.IsNotFound(err), apierrors.IsUnauthorized(err):
		return notify.Permanent(fmt.Errorf("kubernetes event %s %s: %w", ev.Reason, ev.Name, err))
	}
	return fmt.Errorf("kubernetes event %s %s: %w", ev.Reason, ev.Name, err)
}
