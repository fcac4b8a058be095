// Package notify tells the outside world what became of a revision, the way
// Flux's notification-controller does: commit statuses on GitHub and GitLab,
// signed JSON to a generic webhook, a message to Slack.
//
// Sending never blocks the caller (a reconcile or a rollout): each provider
// has a queue and a worker that retries with backoff; when a queue is full
// the oldest event is dropped and counted.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// State of a revision, as a commit status says it.
type State string

const (
	// Pending: the revision is being built or rolled out.
	Pending State = "pending"
	// Success: the revision was applied fleet-wide.
	Success State = "success"
	// Failure: the revision was refused or rolled back.
	Failure State = "failure"
)

// Event is what happened to a revision.
type Event struct {
	// Revision as gitxds writes it: "main@sha1:<40 hex>".
	Revision string `json:"revision"`
	State    State  `json:"state"`
	// Reason is the status reason (BuildFailed, RolloutFailed, Succeeded, ...).
	Reason string `json:"reason,omitempty"`
	// Stage is the rollout stage it concerns, if any.
	Stage   string    `json:"stage,omitempty"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// Overlay is the overlay gitxds serves (the commit status context).
	Overlay string `json:"overlay,omitempty"`
}

// Commit is the commit SHA of the event's revision, or "".
func (e Event) Commit() string {
	_, sha, ok := strings.Cut(e.Revision, "@sha1:")
	if !ok {
		return ""
	}
	return sha
}

// Provider sends events to one destination.
type Provider interface {
	// Name identifies the provider in logs and metrics, e.g.
	// "github:https://github.example.com/org/gateways".
	Name() string
	// Send delivers one event. An error is retried unless it is Permanent.
	Send(ctx context.Context, e Event) error
}

// permanent marks an error that retrying cannot fix (a 4xx answer).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent wraps err so that it is not retried.
func Permanent(err error) error { return permanent{err} }

// Result of a delivery, for metrics.
type Result string

const (
	Delivered Result = "delivered"
	Failed    Result = "failed"  // gave up after the retries, or a permanent error
	Dropped   Result = "dropped" // the queue was full
)

// Options of a Notifier.
type Options struct {
	Log *slog.Logger
	// Record counts each delivery by provider and result (metrics); optional.
	Record func(provider string, r Result)
	// Attempts per event (default 5), with exponential backoff from
	// Backoff (default 1s) up to MaxBackoff (default 1m).
	Attempts            int
	Backoff, MaxBackoff time.Duration
	// Timeout of one attempt (default 10s).
	Timeout time.Duration
	// Queue is the number of events a provider holds (default 64).
	Queue int
}

// Notifier fans events out to providers.
type Notifier struct {
	opts    Options
	workers []*worker
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

type worker struct {
	p  Provider
	mu sync.Mutex
	q  []Event
	// wake is signalled when an event is queued.
	wake chan struct{}
}

// New starts a worker per provider; Close stops them.
func New(providers []Provider, opts Options) *Notifier {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{opts: opts, cancel: cancel}
	for _, p := range providers {
		w := &worker{p: p, wake: make(chan struct{}, 1)}
		n.workers = append(n.workers, w)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, w)
		}()
	}
	return n
}

// Notify queues e for every provider. It never blocks.
func (n *Notifier) Notify(e Event) {
	if n == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for _, w := range n.workers {
		w.mu.Lock()
		if len(w.q) >= n.opts.Queue {
			w.q = w.q[1:]
			n.record(w.p, Dropped)
			n.opts.Log.Warn("notification queue full; dropped the oldest event", "provider", w.p.Name())
		}
		w.q = append(w.q, e)
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Close stops the workers; events still queued are not sent.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	n.cancel()
	n.wg.Wait()
}

func (n *Notifier) record(p Provider, r Result) {
	if n.opts.Record != nil {
		n.opts.Record(p.Name(), r)
	}
}

func (n *Notifier) run(ctx context.Context, w *worker) {
	for {
		w.mu.Lock()
		var e Event
		ok := len(w.q) > 0
		if ok {
			e, w.q = w.q[0], w.q[1:]
		}
		w.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		n.deliver(ctx, w.p, e)
	}
}

// deliver sends e, retrying with exponential backoff.
func (n *Notifier) deliver(ctx context.Context, p Provider, e Event) {
	backoff := n.opts.Backoff
	var err error
	for attempt := 1; attempt <= n.opts.Attempts; attempt++ {
		actx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
		err = p.Send(actx, e)
		cancel()
		if err == nil {
			n.record(p, Delivered)
			return
		}
		if errors.As(err, new(permanent)) || attempt == n.opts.Attempts {
			break
		}
		n.opts.Log.Info("notification failed; retrying", "provider", p.Name(), "attempt", attempt, "in", backoff, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.opts.MaxBackoff)
	}
	n.record(p, Failed)
	n.opts.Log.Warn("notification not delivered", "provider", p.Name(), "revision", e.Revision, "state", e.State, "error", err)
}

// summary is the one-line text of an event (commit status descriptions,
// chat messages).
func summary(e Event) string {
	s := e.Message
	if s == "" {
		s = string(e.State)
	}
	if e.Stage != "" && !strings.HasPrefix(s, "stage ") {
		s = fmt.Sprintf("stage %s: %s", e.Stage, s)
	}
	return s
}
