package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
)

// A build must never take the control plane down, nor down again after a
// restart. Three guards:
//
//   - A deadline. The render cannot be cancelled from inside kustomize, so
//     the build runs in its own goroutine and the reconciler stops waiting
//     at the deadline: the revision fails (BuildTimedOut) and is not built
//     again until a new commit arrives. The abandoned build runs on in the
//     background until it ends, and its result is discarded. The next build
//     waits for it to end, at most one more deadline; if it still runs then,
//     the process exits deliberately (ExitBuildStuck) so the restart starts
//     clean — the abandoned revision is recorded failed already, so it is
//     not built again: one exit, never a loop.
//   - A memory budget. While a build runs (an abandoned one included), the
//     live heap is sampled (runtime/metrics); when it has grown by more than
//     the budget since the build started, the build cannot be stopped, so
//     the process records the revision in the build marker with the reason
//     and exits deliberately (ExitMemoryBudget); the restart records the
//     revision failed (MemoryBudgetExceeded). The growth, not the heap, is
//     bounded: what the process holds besides the build (the snapshots
//     served to many nodes) is not the build's fault.
//   - A marker. "building <revision> since <time>" is persisted in the state
//     directory before a build and removed after it. A marker found when
//     the reconcile loop starts means that build killed the process (out of
//     memory, a crash): the revision is recorded failed (BuildCrashed) and
//     not built again until a new commit arrives, while the last good
//     snapshot keeps serving.

// Exit codes of the deliberate exits.
const (
	// ExitMemoryBudget: a build went over the memory budget.
	ExitMemoryBudget = 3
	// ExitBuildStuck: a build abandoned at its deadline was still running
	// one deadline later.
	ExitBuildStuck = 4
)

// DefaultBuildTimeout is the build deadline when BuildLimits.Timeout is zero.
const DefaultBuildTimeout = 60 * time.Second

// BuildLimits bound one build.
type BuildLimits struct {
	// Timeout is the build deadline (DefaultBuildTimeout when zero).
	Timeout time.Duration
	// MemoryBudget bounds how much the live heap may grow while a build
	// runs, in bytes. Zero derives it from the Go memory limit (GOMEMLIMIT):
	// half of it when one is set (the build must fit beside what is
	// served), no budget otherwise. Negative: no budget.
	MemoryBudget int64
	// SampleEvery is how often the heap is sampled (default 20ms).
	SampleEvery time.Duration
}

func (l BuildLimits) withDefaults() BuildLimits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultBuildTimeout
	}
	if l.MemoryBudget == 0 {
		l.MemoryBudget = -1
		if lim := debug.SetMemoryLimit(-1); lim > 0 && lim != math.MaxInt64 {
			l.MemoryBudget = lim / 2
		}
	}
	if l.SampleEvery <= 0 {
		l.SampleEvery = 20 * time.Millisecond
	}
	return l
}

// Builder builds a revision: a *pipeline.Pipeline in production, a fake in
// tests.
type Builder interface {
	Run(fsys filesys.FileSystem, overlay, revision string, last *model.Memory) (*pipeline.Result, error)
}

// ErrBuildTimeout: the build exceeded its deadline and was abandoned.
var ErrBuildTimeout = errors.New("build exceeded its deadline")

// errExiting: the process is exiting deliberately.
var errExiting = errors.New("the process is exiting")

// BuildMarker is what the state directory holds while a build runs.
type BuildMarker struct {
	Revision string    `json:"revision"`
	Started  time.Time `json:"started"`
	// Reason is set when the process exits deliberately because of this
	// build (its memory budget); empty when it just died.
	Reason string `json:"reason,omitempty"`
}

// buildGuard runs builds under BuildLimits. One build at a time: its
// callers, the reconcile loop's build step and (under high availability)
// the applier's Reconciler.Set, serialize on Reconciler.buildMu.
type buildGuard struct {
	lim   BuildLimits
	store *Store
	log   *slog.Logger
	exit  func(code int)

	mu        sync.Mutex
	abandoned *runningBuild // a build left at its deadline that still runs
	// exiting is set before a deliberate exit: nothing may remove the
	// marker then (os.Exit does not return, a test's exit does).
	exiting atomic.Bool
}

type runningBuild struct {
	marker BuildMarker
	done   chan struct{}
}

// heapMetric is the heap occupied by the objects the last GC found live:
// garbage does not count, what a build holds on to does. Near GOMEMLIMIT the
// GC runs often, so it follows a build that blows up closely.
const heapMetric = "/gc/heap/live:bytes"

func heapBytes() int64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// run builds rev with build under the deadline, the memory budget and the
// marker.
func (g *buildGuard) run(ctx context.Context, rev string, build func() (*pipeline.Result, error)) (*pipeline.Result, error) {
	g.waitAbandoned(ctx)
	rb := &runningBuild{marker: BuildMarker{Revision: rev, Started: time.Now().UTC()}, done: make(chan struct{})}
	if err := g.store.SaveBuilding(rb.marker); err != nil {
		// Without the marker a crash would go unnoticed: do not build.
		return nil, fmt.Errorf("persisting the build marker: %w", err)
	}
	type result struct {
		b   *pipeline.Result
		err error
	}
	res := make(chan result, 1)
	go func() {
		defer close(rb.done)
		defer func() {
			if p := recover(); p != nil {
				res <- result{err: fmt.Errorf("build panicked: %v", p)}
			}
		}()
		b, err := build()
		res <- result{b, err}
	}()
	go g.watchMemory(rb)

	timer := time.NewTimer(g.lim.Timeout)
	defer timer.Stop()
	select {
	case r := <-res:
		if g.exiting.Load() {
			return nil, errExiting
		}
		g.clearMarker(rev)
		return r.b, r.err
	case <-ctx.Done():
		// Shutting down: the build is not at fault.
		g.clearMarker(rev)
		return nil, ctx.Err()
	case <-timer.C:
		g.mu.Lock()
		g.abandoned = rb
		g.mu.Unlock()
		go func() {
			<-rb.done
			g.mu.Lock()
			if g.abandoned == rb {
				g.abandoned = nil
			}
			g.mu.Unlock()
			g.clearMarker(rev)
			g.log.Info("the abandoned build ended; its result is discarded", "revision", rev, "after", time.Since(rb.marker.Started).Round(time.Millisecond))
		}()
		return nil, fmt.Errorf("%w of %s and was abandoned (it runs on in the background until it ends; its result is discarded)", ErrBuildTimeout, g.lim.Timeout)
	}
}

// waitAbandoned waits for an abandoned build to end, at most one deadline;
// when it still runs after that, the process exits deliberately.
func (g *buildGuard) waitAbandoned(ctx context.Context) {
	g.mu.Lock()
	rb := g.abandoned
	g.mu.Unlock()
	if rb == nil {
		return
	}
	g.log.Warn("waiting for the abandoned build to end before the next one", "revision", rb.marker.Revision)
	timer := time.NewTimer(g.lim.Timeout)
	defer timer.Stop()
	select {
	case <-rb.done:
	case <-ctx.Done():
	case <-timer.C:
		// Its revision is recorded failed already: the restart does not
		// build it again. Nothing is blamed on the restart.
		g.clearMarker(rb.marker.Revision)
		g.log.Error("the abandoned build still runs one deadline later; exiting so that a restart reclaims it",
			"revision", rb.marker.Revision, "since", rb.marker.Started, "exitCode", ExitBuildStuck)
		g.exit(ExitBuildStuck)
		// Only a test's exit returns: it goes on as a restarted process would.
	}
}

// watchMemory samples the heap until rb ends; above the budget it records
// the reason in the marker and exits.
func (g *buildGuard) watchMemory(rb *runningBuild) {
	if g.lim.MemoryBudget < 0 {
		return
	}
	base := heapBytes()
	t := time.NewTicker(g.lim.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-rb.done:
			return
		case <-t.C:
		}
		heap := heapBytes()
		if heap-base <= g.lim.MemoryBudget {
			continue
		}
		m := rb.marker
		m.Reason = fmt.Sprintf("exceeded memory budget: the live heap grew by %d bytes while building, over the budget of %d bytes", heap-base, g.lim.MemoryBudget)
		if err := g.store.SaveBuilding(m); err != nil {
			g.log.Error("persisting the build marker", "error", err)
		}
		g.log.Error("a build exceeded the memory budget; it cannot be stopped, so the process exits and the restart records the revision failed",
			"revision", m.Revision, "heap", heap, "budget", g.lim.MemoryBudget, "exitCode", ExitMemoryBudget)
		g.exiting.Store(true)
		g.exit(ExitMemoryBudget)
		return
	}
}

// clearMarker removes the marker when it still names rev.
func (g *buildGuard) clearMarker(rev string) {
	m, err := g.store.LoadBuilding()
	if err != nil || m == nil || m.Revision != rev {
		return
	}
	if err := g.store.ClearBuilding(); err != nil {
		g.log.Error("removing the build marker", "error", err)
	}
}

func defaultExit(code int) { os.Exit(code) }
