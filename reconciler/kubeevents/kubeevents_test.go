package kubeevents

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/status"
)

const (
	ns    = "gitxds-system"
	lease = "gitxds"
	rev   = "main@sha1:0123456789abcdef0123456789abcdef01234567"
)

var t0 = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func newEvents(t *testing.T, client *fake.Clientset) *Events {
	t.Helper()
	k, err := New(Options{Client: client, Regarding: LeaseReference(ns, lease), Instance: "gitxds-0@10.0.0.1:9400"})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSendWritesEvents: each kind of notify.Event becomes one
// events.k8s.io/v1 Event regarding the Lease, with its reason, type,
// action and a note that names the revision, the stage and the message.
func TestSendWritesEvents(t *testing.T) {
	in := []struct {
		e                   notify.Event
		typ, reason, action string
		note                string
	}{
		{notify.Event{Revision: rev, State: notify.Pending, Reason: status.ReasonRollingOut, Message: "building " + rev},
			corev1.EventTypeNormal, string(notify.RevisionAttempted), ActionRollout, rev + ": building " + rev},
		{notify.Event{Revision: rev, State: notify.Pending, Reason: status.ReasonRollingOut, Stage: "canary", Message: "rolling out " + rev + " (stage canary)"},
			corev1.EventTypeNormal, string(notify.StageStarted), ActionRollout, rev + " stage canary: rolling out " + rev + " (stage canary)"},
		{notify.Event{Revision: rev, State: notify.Success, Reason: status.ReasonSucceeded, Message: "applied " + rev},
			corev1.EventTypeNormal, string(notify.RolloutSucceeded), ActionRollout, rev + ": applied " + rev},
		{notify.Event{Revision: rev, State: notify.Failure, Reason: status.ReasonRolloutFailed, Stage: "canary", Message: "node edge-1 NACKed"},
			corev1.EventTypeWarning, string(notify.RolledBack), ActionRollback, rev + " stage canary: node edge-1 NACKed"},
		{notify.Event{Revision: rev, State: notify.Failure, Reason: status.ReasonRenderFailed, Message: "kustomize: no such file"},
			corev1.EventTypeWarning, string(notify.RevisionRefused), ActionRefuse, rev + ": kustomize: no such file"},
		{notify.Event{Revision: rev, State: notify.Failure, Reason: status.ReasonBuildTimedOut, Message: "build exceeded 2m"},
			corev1.EventTypeWarning, string(notify.RevisionRefused), ActionRefuse, rev + ": build exceeded 2m"},
		{notify.Event{Revision: rev, State: notify.Failure, Reason: status.ReasonObjectsRejected, Message: "1 object(s) rejected"},
			corev1.EventTypeWarning, string(notify.ObjectsRejected), ActionRollout, rev + ": 1 object(s) rejected"},
	}
	client := fake.NewClientset()
	k := newEvents(t, client)
	for i := range in {
		in[i].e.Time = t0.Add(time.Duration(i) * time.Second)
	}
	for _, c := range in {
		if err := k.Send(context.Background(), c.e); err != nil {
			t.Fatalf("%s: %v", c.reason, err)
		}
	}
	list, err := client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != len(in) {
		t.Fatalf("%d events written, want %d", len(list.Items), len(in))
	}
	got := map[string]eventsv1.Event{}
	for _, ev := range list.Items {
		got[ev.Name] = ev
	}
	for i, c := range in {
		at := t0.Add(time.Duration(i) * time.Second)
		ev, ok := got[k.Event(c.e).Name]
		if !ok {
			t.Errorf("%s: no event", c.reason)
			continue
		}
		if ev.Reason != c.reason || ev.Type != c.typ || ev.Action != c.action || ev.Note != c.note {
			t.Errorf("event %d: reason=%s type=%s action=%s note=%q; want %s %s %s %q", i, ev.Reason, ev.Type, ev.Action, ev.Note, c.reason, c.typ, c.action, c.note)
		}
		want := corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Namespace: ns, Name: lease}
		if ev.Regarding != want {
			t.Errorf("event %d regards %+v, want the Lease %+v", i, ev.Regarding, want)
		}
		if ev.Namespace != ns || ev.ReportingController != Controller || ev.ReportingInstance != "gitxds-0@10.0.0.1:9400" ||
			!ev.EventTime.Time.Equal(at) || ev.Annotations[AnnotationRevision] != rev {
			t.Errorf("event %d: namespace=%s controller=%s instance=%s time=%v annotations=%v", i, ev.Namespace, ev.ReportingController, ev.ReportingInstance, ev.EventTime, ev.Annotations)
		}
	}
}

// TestNoteIsBounded: the API server refuses a note over 1 kB.
func TestNoteIsBounded(t *testing.T) {
	n := Note(notify.Event{Revision: rev, State: notify.Failure, Message: strings.Repeat("é", 2000)})
	if len(n) > maxNote || !strings.HasSuffix(n, "…") || !strings.HasPrefix(n, rev+": é") {
		t.Errorf("note of %d bytes: %q...", len(n), n[:80])
	}
}

// TestPermanentErrors: a Forbidden answer (RBAC) is not retried; an
// unavailable API server is.
func TestPermanentErrors(t *testing.T) {
	for _, c := range []struct {
		err      error
		attempts int
	}{
		{apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x", errors.New("RBAC")), 1},
		{apierrors.NewServiceUnavailable("later"), 3},
	} {
		client := fake.NewClientset()
		var mu sync.Mutex
		calls := 0
		client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			return true, nil, c.err
		})
		done := make(chan notify.Result, 1)
		n := notify.New([]notify.Provider{newEvents(t, client)}, notify.Options{Attempts: 3, Backoff: time.Nanosecond, Log: quiet,
			Record: func(_ string, r notify.Result) { done <- r }})
		n.Notify(notify.Event{Revision: rev, State: notify.Success})
		if r := <-done; r != notify.Failed {
			t.Errorf("%v: %s, want failed", c.err, r)
		}
		n.Close()
		if calls != c.attempts {
			t.Errorf("%v: %d attempts, want %d", c.err, calls, c.attempts)
		}
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestNotifyNeverBlocks: with the API server stuck, Notify returns at once
// (the reconcile loop is never held), drops the oldest events when the
// queue is full, and the worker writes the rest in order once the server
// answers.
func TestNotifyNeverBlocks(t *testing.T) {
	client := fake.NewClientset()
	release := make(chan struct{})
	var mu sync.Mutex
	var created []string
	wrote := make(chan struct{}, 100)
	client.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		ev := a.(k8stesting.CreateAction).GetObject().(*eventsv1.Event)
		mu.Lock()
		created = append(created, ev.Note)
		mu.Unlock()
		wrote <- struct{}{}
		return false, nil, nil // and let the tracker store it
	})
	var rmu sync.Mutex
	results := map[notify.Result]int{}
	n := notify.New([]notify.Provider{newEvents(t, client)}, notify.Options{Queue: 4, Attempts: 1, Log: quiet,
		Record: func(_ string, r notify.Result) { rmu.Lock(); results[r]++; rmu.Unlock() }})
	defer n.Close()
	const sent = 20
	for i := range sent {
		// Returns although the worker is stuck on the first event: a
		// blocking Notify would hang the test here.
		n.Notify(notify.Event{Revision: rev, State: notify.Pending, Stage: "s" + string(rune('a'+i)), Time: t0.Add(time.Duration(i) * time.Second)})
	}
	close(release)
	// The worker had taken at most one event before the queue filled; the
	// queue kept the last 4.
	rmu.Lock()
	dropped := results[notify.Dropped]
	rmu.Unlock()
	if dropped < sent-5 || dropped > sent-4 {
		t.Fatalf("dropped %d events, want %d or %d", dropped, sent-5, sent-4)
	}
	for range sent - dropped {
		<-wrote
	}
	mu.Lock()
	defer mu.Unlock()
	last := created[len(created)-4:]
	for i, note := range last {
		want := rev + " stage s" + string(rune('a'+sent-4+i)) + ": pending"
		if note != want {
			t.Errorf("event %d written: %q, want %q (the newest, in order)", i, note, want)
		}
	}
}
