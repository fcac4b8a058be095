package reconciler

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/status"
)

// slowBuilder is the production pipeline behind a gate: a build of a
// revision in hold waits until release is closed. It counts builds by
// revision and says when one started.
type slowBuilder struct {
	real    Builder
	hold    map[string]bool
	release chan struct{}
	started chan string
	// grow is how many bytes a held build allocates and keeps while held.
	grow int

	mu     sync.Mutex
	builds map[string]int
}

func newSlowBuilder(hold ...string) *slowBuilder {
	b := &slowBuilder{hold: map[string]bool{}, release: make(chan struct{}), started: make(chan string, 16), builds: map[string]int{}}
	for _, rev := range hold {
		b.hold[rev] = true
	}
	return b
}

func (b *slowBuilder) wrap(real Builder) Builder { b.real = real; return b }

func (b *slowBuilder) Run(fsys filesys.FileSystem, overlay, revision string, last *model.Memory) (*pipeline.Result, error) {
	b.mu.Lock()
	b.builds[revision]++
	hold := b.hold[revision]
	b.mu.Unlock()
	b.started <- revision
	if hold && b.grow == 0 {
		<-b.release
	} else if hold {
		held := make([]byte, b.grow)
		for i := range held {
			held[i] = 1 // touched: really held
		}
		for {
			runtime.GC() // the live heap is measured by the GC
			select {
			case <-b.release:
				runtime.KeepAlive(held)
				return b.real.Run(fsys, overlay, revision, last)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return b.real.Run(fsys, overlay, revision, last)
}

func (b *slowBuilder) count(rev string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.builds[rev]
}

// wantFailed checks that rev is the failed attempt with reason, Ready says
// so, and the last good (applied) keeps serving.
func wantFailed(t *testing.T, h *harness, rev, reason, applied string) {
	t.Helper()
	st := h.rec.Status()
	var found *status.FailedRevision
	for i := range st.FailedRevisions {
		if st.FailedRevisions[i].Revision == rev {
			found = &st.FailedRevisions[i]
		}
	}
	if found == nil || found.Reason != reason {
		t.Errorf("failed revisions %+v, want %s failed with %s", st.FailedRevisions, rev, reason)
	}
	if s, r, msg := h.ready(); s != "False" || r != reason || !strings.Contains(msg, rev) {
		t.Errorf("Ready = %s/%s %q, want False/%s naming %s", s, r, msg, reason, rev)
	}
	if st.LastAppliedRevision != applied {
		t.Errorf("applied %s, want %s", st.LastAppliedRevision, applied)
	}
	if lg := h.rec.LastGood(); lg == nil || lg.Revision != applied {
		t.Errorf("last good serving %v, want %s", lg, applied)
	}
}

// A process that dies while building a revision leaves its marker: after
// the restart the revision is recorded failed (BuildCrashed) and never built
// again, the last good keeps serving, and a new commit is built.
func TestCrashWhileBuildingNotBuiltAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	good := h.head()
	killer := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9002")})

	// The build of killer never ends: the process "dies" in it.
	// It is never released (a dead process does nothing more), and its
	// deadline is far away.
	dying := newSlowBuilder(killer)
	h.start(harnessOptions{pipeline: dying.wrap, build: BuildLimits{Timeout: time.Hour}})
	go h.rec.ReconcileOnce(context.Background(), "test") //nolint:errcheck // abandoned with the process
	if rev := <-dying.started; rev != killer {
		t.Fatalf("building %s, want %s", rev, killer)
	}
	if m, err := h.rec.opts.Store.LoadBuilding(); err != nil || m == nil || m.Revision != killer {
		t.Fatalf("build marker %+v (%v), want one for %s", m, err, killer)
	}

	for restart := range 2 {
		counting := newSlowBuilder()
		h.start(harnessOptions{pipeline: counting.wrap})
		for range 2 {
			if err := h.reconcile(); err != nil {
				t.Fatal(err)
			}
		}
		if n := counting.count(killer); n != 0 {
			t.Fatalf("restart %d: %s built %d times, want never", restart, killer, n)
		}
		wantFailed(t, h, killer, status.ReasonBuildCrashed, good)
		if m, _ := h.rec.opts.Store.LoadBuilding(); m != nil {
			t.Errorf("restart %d: the marker is still there: %+v", restart, m)
		}
	}

	next := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9003")})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if st := h.rec.Status(); st.LastAppliedRevision != next {
		t.Errorf("after a new commit: applied %s, want %s", st.LastAppliedRevision, next)
	}
}

// A build over its deadline fails its revision (BuildTimedOut), which is
// not built again, not even after a restart, while the last good keeps
// serving. The abandoned build does not wedge the next one.
func TestBuildDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	good := h.head()
	slow := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9002")})
	builder := newSlowBuilder(slow)
	limits := BuildLimits{Timeout: 50 * time.Millisecond} // the slow build never ends before release
	h.start(harnessOptions{pipeline: builder.wrap, build: limits})

	if err := h.reconcile(); !errors.Is(err, ErrBuildTimeout) {
		t.Fatalf("reconcile of a slow build: %v, want ErrBuildTimeout", err)
	}
	wantFailed(t, h, slow, status.ReasonBuildTimedOut, good)
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if n := builder.count(slow); n != 1 {
		t.Errorf("%s built %d times, want once", slow, n)
	}

	// The abandoned build ends; the next commit builds.
	close(builder.release)
	next := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9003")})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if st := h.rec.Status(); st.LastAppliedRevision != next {
		t.Errorf("after the abandoned build: applied %s, want %s", st.LastAppliedRevision, next)
	}

	// Restarted, the timed-out revision is still failed: reset the branch
	// to it and it is not built.
	if err := h.repo.Reset(strings.TrimPrefix(slow, "main@sha1:")); err != nil {
		t.Fatal(err)
	}
	again := newSlowBuilder()
	h.start(harnessOptions{pipeline: again.wrap, build: limits})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if n := again.count(slow); n != 0 {
		t.Errorf("after a restart, %s built %d times, want never", slow, n)
	}
	wantFailed(t, h, slow, status.ReasonBuildTimedOut, next)
}

// An abandoned build that still runs one deadline later makes the process
// exit deliberately (once), so that the next build is never wedged behind it.
func TestAbandonedBuildStuckExits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	stuck := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9002")})
	builder := newSlowBuilder(stuck)
	t.Cleanup(func() { close(builder.release) })
	var exits []int
	var mu sync.Mutex
	h.start(harnessOptions{pipeline: builder.wrap, build: BuildLimits{Timeout: 50 * time.Millisecond},
		exit: func(code int) { mu.Lock(); exits = append(exits, code); mu.Unlock() }})
	if err := h.reconcile(); !errors.Is(err, ErrBuildTimeout) {
		t.Fatalf("reconcile: %v, want ErrBuildTimeout", err)
	}
	next := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9003")})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exits) != 1 || exits[0] != ExitBuildStuck {
		t.Errorf("exits %v, want one with code %d", exits, ExitBuildStuck)
	}
	if st := h.rec.Status(); st.LastAppliedRevision != next {
		t.Errorf("applied %s, want %s", st.LastAppliedRevision, next)
	}
}

// A build over the memory budget cannot be stopped: the reconciler writes
// the reason in the marker and exits; the restart records the revision
// failed (MemoryBudgetExceeded) and does not build it again.
func TestMemoryBudgetExit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	good := h.head()
	hungry := h.commit(map[string]string{"teams/echo/backends.yaml": backendFile("9002")})
	builder := newSlowBuilder(hungry)
	builder.grow = 64 << 20 // held on to, far over the budget
	exited := make(chan int, 1)
	// The build holds its memory until the exit.
	h.start(harnessOptions{pipeline: builder.wrap, build: BuildLimits{MemoryBudget: 8 << 20},
		exit: func(code int) { exited <- code; close(builder.release); select {} }})
	done := make(chan error, 1)
	go func() { done <- h.rec.ReconcileOnce(context.Background(), "test") }()
	if code := <-exited; code != ExitMemoryBudget {
		t.Fatalf("exit code %d, want %d", code, ExitMemoryBudget)
	}
	<-done
	m, err := h.rec.opts.Store.LoadBuilding()
	if err != nil || m == nil || m.Revision != hungry || !strings.Contains(m.Reason, "exceeded memory budget") {
		t.Fatalf("marker %+v (%v), want %s with the memory budget reason", m, err, hungry)
	}

	again := newSlowBuilder()
	h.start(harnessOptions{pipeline: again.wrap})
	if err := h.reconcile(); err != nil {
		t.Fatal(err)
	}
	if n := again.count(hungry); n != 0 {
		t.Errorf("%s built %d times after the restart, want never", hungry, n)
	}
	wantFailed(t, h, hungry, status.ReasonMemoryBudget, good)
}

// The default memory budget is half of the Go memory limit, when one is set.
func TestBuildLimitsDefaults(t *testing.T) {
	prev := debug.SetMemoryLimit(1 << 30)
	defer debug.SetMemoryLimit(prev)
	if got := (BuildLimits{}).withDefaults(); got.MemoryBudget != 1<<29 || got.Timeout != DefaultBuildTimeout {
		t.Errorf("with GOMEMLIMIT=1GiB: %+v, want a budget of half and the default timeout", got)
	}
	debug.SetMemoryLimit(-1 & 0x7fffffffffffffff)
	if got := (BuildLimits{}).withDefaults(); got.MemoryBudget >= 0 {
		t.Errorf("without a memory limit: budget %d, want none", got.MemoryBudget)
	}
	if got := (BuildLimits{MemoryBudget: 5}).withDefaults(); got.MemoryBudget != 5 {
		t.Errorf("explicit budget changed: %d", got.MemoryBudget)
	}
}
