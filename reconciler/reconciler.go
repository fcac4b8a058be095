// Package reconciler is the control loop of `gitxds serve`: it polls the
// source, builds each new revision through the pipeline (package pipeline)
// and hands the result to the rollout, which the xDS server serves:
//
//	source ──> pipeline (render, model, translate) ──> rollout ──> xDS server
//
// A reconcile is a list of steps (source, build, rollout); each records
// what it found, and one summary (summary.go) computes the conditions.
//
// Files: reconciler.go (the loop and its steps), summary.go (the
// conditions), buildguard.go (a build's deadline, memory budget and
// crash marker), store.go (what survives a restart, over package state),
// events.go (the history and the notifications, derived from the status),
// ha.go (one replica of several: the applier and the leader's part).
// daemon.Start wires a Reconciler to the xDS server through
// admin.XDSFleet, the rollout.Fleet it is given.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/metrics"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

// Source is what the reconciler needs of the source stage.
type Source interface {
	Poll(ctx context.Context) (rev source.Revision, changed bool, err error)
	FS(ctx context.Context, rev source.Revision) (filesys.FileSystem, error)
}

// Options of a Reconciler.
type Options struct {
	Source   Source
	URL, Ref string // for status only
	Overlay  string
	Interval time.Duration
	// Pipeline builds revisions (a *pipeline.Pipeline in production).
	Pipeline Builder
	// Build bounds each build: deadline and memory budget.
	Build BuildLimits
	// Exit ends the process on a deliberate exit (a build over the memory
	// budget, or stuck); os.Exit when nil. Tests replace it.
	Exit  func(code int)
	Fleet rollout.Fleet
	// Store persists the last good snapshot and the rollout state; required.
	Store   *Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// NewQuerier overrides the Prometheus client of metric gates (tests).
	NewQuerier func(address string) (rollout.Querier, error)
	// Describe, when set, says what a build changes in what is served, one
	// line per route change (the history keeps them; events.go).
	Describe func(lastGood *snapshot.Set, b *pipeline.Result) []string
	// Notifier, when set, is told what becomes of each revision
	// (events.go); never blocks.
	Notifier interface{ Notify(notify.Event) }

	// Board, when set, makes this reconciler one replica of several (high
	// availability, ha.go): it polls and builds like every replica, serves
	// its nodes as the fleet-wide rollout on the Board says (through a
	// rollout.Replica), and starts rollouts only while Lead runs.
	Board rollout.Board
	// Replica is this replica's name in its reports (with Board).
	Replica string
	// ReplicaHeartbeat: how often the report is written at least
	// (rollout.DefaultHeartbeat when zero); StaleAfter and GoneAfter, the
	// liveness of reports (rollout's defaults when zero).
	ReplicaHeartbeat      time.Duration
	StaleAfter, GoneAfter time.Duration
}

// Reconciler is the control loop of `gitxds serve`.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	engine  *rollout.Engine
	trigger chan string
	builds  *buildGuard
	// recovered runs recoverBuild once, before the first reconcile.
	recovered sync.Once

	mu sync.Mutex
	// st is the status GET /status shows (conditions set by summarize
	// only); state is what survives a restart (store.go), saved through
	// Options.Store.
	st    status.Status
	state persisted
	// policy is the last RolloutPolicy that compiled, used when a revision's
	// policy is rejected.
	policy *rollout.Policy
	// building is the build whose rollout is in progress.
	building *pipeline.Result
	// interrupted is the rollout a restart interrupted, if any: it starts
	// over from the first stage when its revision is built again.
	interrupted *status.Rollout
	// rolloutSaved throttles persisting rollout progress.
	rolloutSaved time.Time
	// rolloutStage is the stage the Ready message last named.
	rolloutStage string
	// appliedNote says how the applied revision got applied when it did not
	// go through the stages (no change served, fast path); Ready says it.
	appliedNote string
	// notified is the last event sent (events.go).
	notified eventKey
	// history of the revisions attempted (events.go), persisted.
	history []status.Revision
	// refetch is the revision whose tree the source failed to give (a
	// timeout, a dropped connection): the next poll tries it again even
	// though it is the last attempted one.
	refetch string

	// What the steps of the reconcile record for the summary (summary.go).
	// sourceProblem is why the last poll or fetch failed (the source step's
	// Ready=False SourceFailed); nil when it succeeded.
	sourceProblem *problem
	// refused is why the last attempted revision cannot be served (the
	// build step's Stalled=True); nil when it could be built.
	refused *problem
	// inBuild is the revision being built (Reconciling=True).
	inBuild string
	// built: this process has built a revision (or refused one), so the
	// objects' status is known.
	built bool

	// High availability (ha.go); nil and unused without Options.Board.
	ha *haState
	// buildMu serializes builds: the reconcile loop's and those the
	// applier asks for (one build marker).
	buildMu sync.Mutex
}

// ancestry is what the reconciler asks a source that can tell whether a
// commit descends from another (source.Source does).
type ancestry interface {
	Descends(ctx context.Context, rev source.Revision, ancestor plumbing.Hash) (descends, known bool, err error)
}

// New returns a reconciler; call Restore before serving xDS, then Run.
func New(opts Options) *Reconciler {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Exit == nil {
		opts.Exit = defaultExit
	}
	r := &Reconciler{opts: opts, log: opts.Log, trigger: make(chan string, 1)}
	r.builds = &buildGuard{lim: opts.Build.withDefaults(), store: opts.Store, log: opts.Log, exit: opts.Exit}
	r.st.Source = status.Source{URL: opts.URL, Ref: opts.Ref, Path: opts.Overlay}
	r.st.Conditions = []metav1.Condition{}
	var reach rollout.Reach = rollout.NewLocal(opts.Fleet)
	if opts.Board != nil {
		reach = r.newHA()
	}
	r.engine = rollout.NewEngine(reach, rollout.Options{
		Log:        opts.Log,
		NewQuerier: opts.NewQuerier,
		OnChange:   r.onRolloutChange,
		OnDone:     r.onRolloutDone,
	})
	return r
}

// Restore loads the persisted state and serves the last good snapshot to
// every node before the xDS server accepts its first stream: after a restart
// nodes get the last good config at once, even with Git unreachable.
func (r *Reconciler) Restore() error {
	p, err := r.opts.Store.Load()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = *p
	r.st.FailedRevisions = p.Failed
	if h, err := r.opts.Store.LoadHistory(); err != nil {
		r.log.Warn("cannot read the persisted history; starting a new one", "error", err)
	} else {
		r.history = h
	}
	if r.ha == nil { // fleet-wide, the rollout lives on the Board
		r.restoreRollout()
	}
	if p.LastGood != nil {
		r.opts.Fleet.SetDefault(p.LastGood)
		r.st.LastAppliedRevision = p.LastGoodRevision
		r.st.LastAppliedHash = p.LastGood.Hash()
		r.opts.Metrics.SetRevision("applied", p.LastGoodRevision)
		r.log.Info("restored last good snapshot", "revision", p.LastGoodRevision, "hash", p.LastGood.Hash())
	}
	r.summarize()
	return nil
}

// restoreRollout reports the rollout a restart interrupted, if any: it
// starts over when its revision is built again. Caller holds r.mu.
func (r *Reconciler) restoreRollout() {
	ro, err := r.opts.Store.LoadRollout()
	switch {
	case err != nil:
		r.log.Warn("cannot read the persisted rollout; ignoring it", "error", err)
	case ro != nil && (ro.Phase == rollout.Progressing || ro.Phase == rollout.Paused):
		ro.Phase, ro.Message = status.RolloutInterrupted, fmt.Sprintf("interrupted by a restart at stage %q; nodes are on the last good version and the rollout starts over from the first stage", ro.Stage)
		r.interrupted = ro
		r.log.Warn("a rollout was interrupted by a restart; it starts over", "revision", ro.Revision, "stage", ro.Stage)
	}
}

// Run reconciles every interval and on Trigger until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	defer r.engine.Stop()
	var leadc <-chan struct{}
	if r.ha != nil {
		leadc = r.ha.leadc
		r.runHA(ctx)
	}
	r.ReconcileOnce(ctx, "startup")
	for {
		select {
		case <-ctx.Done():
			return
		case <-leadc:
			r.takeOver(ctx)
		case <-t.C:
			r.ReconcileOnce(ctx, "interval")
		case why := <-r.trigger:
			r.ReconcileOnce(ctx, why)
		}
	}
}

// Trigger asks for a reconcile now (POST /reconcile, webhooks). It never
// blocks; triggers that arrive while one is pending are merged.
func (r *Reconciler) Trigger(why string) {
	select {
	case r.trigger <- why:
	default:
	}
}

// Status returns a copy of the current status.
func (r *Reconciler) Status() status.Status {
	r.mu.Lock()
	st := r.st
	st.Conditions = append([]metav1.Condition(nil), r.st.Conditions...)
	st.Objects = append([]status.Object(nil), r.st.Objects...)
	st.Warnings = append([]string(nil), r.st.Warnings...)
	st.FailedRevisions = append([]status.FailedRevision(nil), r.st.FailedRevisions...)
	r.mu.Unlock()
	if r.ha != nil {
		st.Rollout = r.fleetRollout()
	} else if ro, ok := r.engine.Status(); ok {
		st.Rollout = &ro
	} else {
		r.mu.Lock()
		st.Rollout = r.interrupted
		r.mu.Unlock()
	}
	return st
}

// Memory is what the model keeps of the applied revision (admin GET
// /accepted).
func (r *Reconciler) Memory() *model.Memory {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.memory()
}

// LastGood is the snapshot that last completed a rollout, or nil.
func (r *Reconciler) LastGood() *snapshot.Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.LastGood
}

// Rollout controls the rollout in progress: pause, resume or abort.
func (r *Reconciler) Rollout(action rollout.Action) error { return r.engine.Control(action) }

// pass is what the steps of one reconcile hand to each other.
type pass struct {
	rev   source.Revision  // the new revision (source step)
	build *pipeline.Result // its build (build step)
}

// step is one step of a reconcile. It records its outcome on the
// Reconciler (never setting conditions itself) and says whether the next
// step runs.
type step func(ctx context.Context, p *pass) (next bool, err error)

// ReconcileOnce runs one reconcile as a list of steps: the source (which
// owns Ready=False SourceFailed), the build (which owns Stalled=True when
// the revision cannot be built) and the rollout decision (the rollout's
// failures come back through onRolloutDone). After each step the summary
// computes Ready, Reconciling and Stalled from what the steps recorded
// (summary.go). It returns the error of the step that failed.
func (r *Reconciler) ReconcileOnce(ctx context.Context, why string) error {
	r.recovered.Do(r.recoverBuild)
	p := &pass{}
	for _, s := range []step{r.reconcileSource, r.reconcileBuild, r.reconcileRollout} {
		next, err := s(ctx, p)
		r.mu.Lock()
		r.summarize()
		r.mu.Unlock()
		if err != nil || !next {
			return err
		}
	}
	return nil
}

// reconcileSource polls the source and records a failure to poll (Ready=
// False, reason SourceFailed; nothing served changes). The build step runs
// when there is a new revision to build, which it records in p.rev.
func (r *Reconciler) reconcileSource(ctx context.Context, p *pass) (bool, error) {
	start := time.Now()
	rev, _, err := r.opts.Source.Poll(ctx)
	r.opts.Metrics.StageDuration.WithLabelValues("source").Observe(time.Since(start).Seconds())
	if next, err := r.recordPoll(rev, err); !next || err != nil {
		return false, err
	}
	r.checkHistory(ctx, rev)
	p.rev = rev
	return true, nil
}

// recordPoll records the result of a poll; it says whether rev is a new
// revision to build.
func (r *Reconciler) recordPoll(rev source.Revision, err error) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Source.LastPoll = time.Now().UTC()
	if errors.Is(err, source.ErrTooLarge) && !rev.IsZero() {
		// The source is fine; the revision is refused while it was
		// fetched, and stays refused until a new commit arrives.
		r.st.Source.LastError, r.sourceProblem = "", nil
		if rev.String() != r.st.LastAttemptedRevision {
			r.attempt(rev)
			r.refuseLocked(rev, status.ReasonRenderFailed, err)
		}
		return false, nil
	}
	if err != nil {
		r.st.Source.LastError = err.Error()
		r.sourceProblem = &problem{reason: status.ReasonSourceFailed,
			message: fmt.Sprintf("cannot poll %s: %v", r.opts.URL, err)}
		r.opts.Metrics.Failures.WithLabelValues(status.ReasonSourceFailed).Inc()
		r.log.Warn("source poll failed", "error", err)
		return false, err
	}
	r.st.Source.LastError, r.sourceProblem = "", nil
	if rev.String() == r.st.LastAttemptedRevision && rev.String() != r.refetch {
		r.opts.Metrics.Reconciles.WithLabelValues("unchanged").Inc()
		return false, nil
	}
	r.refetch = ""
	r.attempt(rev)
	for _, f := range r.state.Failed {
		if f.Revision == rev.String() {
			// Its rollout failed before (perhaps before a restart): it is not
			// retried until a new commit arrives.
			return false, nil
		}
	}
	r.inBuild = rev.String()
	r.log.Info("new revision", "revision", rev.String())
	return true, nil
}

// attempt records rev as the last attempted revision: what the previous
// one was refused for no longer applies. Caller holds r.mu.
func (r *Reconciler) attempt(rev source.Revision) {
	r.st.LastAttemptedRevision = rev.String()
	r.opts.Metrics.SetRevision("attempted", rev.String())
	r.refused = nil
}

// reconcileBuild renders, models and translates the revision into p.build.
// A revision that cannot be built is refused (Stalled=True, with the reason
// of the step that failed) and changes nothing served; a rollout in
// progress goes on. A tree the source failed to give is the source step's
// problem, retried on the next poll.
func (r *Reconciler) reconcileBuild(ctx context.Context, p *pass) (bool, error) {
	b, err := r.build(ctx, p.rev)
	if b == nil || err != nil {
		r.mu.Lock()
		r.inBuild = ""
		r.mu.Unlock()
		return false, err
	}
	p.build = b // in build until the rollout step decides
	return true, nil
}

func (r *Reconciler) build(ctx context.Context, rev source.Revision) (*pipeline.Result, error) {
	start := time.Now()
	fsys, err := r.opts.Source.FS(ctx, rev)
	if err != nil && !errors.Is(err, source.ErrTooLarge) && !errors.Is(err, source.ErrUnverified) {
		// The source failed, not the revision: nothing of it was built,
		// and the next poll (or POST /reconcile) tries it again.
		r.mu.Lock()
		defer r.mu.Unlock()
		r.refetch = rev.String()
		r.st.Source.LastError = err.Error()
		r.sourceProblem = &problem{reason: status.ReasonSourceFailed,
			message: fmt.Sprintf("cannot fetch %s: %v; retried on the next poll", rev, err)}
		r.opts.Metrics.Failures.WithLabelValues(status.ReasonSourceFailed).Inc()
		r.log.Warn("fetching the revision failed; retried on the next poll", "revision", rev.String(), "error", err)
		return nil, err
	}
	if err == nil {
		r.mu.Lock()
		last := r.state.memory()
		r.mu.Unlock()
		var b *pipeline.Result
		r.buildMu.Lock()
		b, err = r.builds.run(ctx, rev.String(), func() (*pipeline.Result, error) {
			return r.opts.Pipeline.Run(fsys, r.opts.Overlay, rev.String(), last)
		})
		r.buildMu.Unlock()
		r.opts.Metrics.StageDuration.WithLabelValues("build").Observe(time.Since(start).Seconds())
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil || errors.Is(err, errExiting) {
			return nil, err // shutting down: the revision is not at fault
		}
	}
	reason := status.ReasonRenderFailed
	var be *pipeline.Error
	switch {
	case errors.As(err, &be):
		reason = be.Step.Reason()
	case errors.Is(err, source.ErrUnverified):
		reason = status.ReasonVerificationFailed
	case errors.Is(err, ErrBuildTimeout):
		reason = status.ReasonBuildTimedOut
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason == status.ReasonBuildTimedOut {
		// Persisted: not built again after a restart either.
		r.recordFailedLocked(status.FailedRevision{Revision: rev.String(), Reason: reason, Message: err.Error(), At: time.Now().UTC()})
	}
	r.refuseLocked(rev, reason, err)
	return nil, err
}

// recoverBuild looks for the marker of a build the process did not finish:
// that build killed it (out of memory, a crash) or made it exit on
// purpose (over the memory budget). Its revision is recorded failed and not
// built again until a new commit arrives; the last good keeps serving.
func (r *Reconciler) recoverBuild() {
	m, err := r.opts.Store.LoadBuilding()
	if err != nil {
		r.log.Error("cannot read the build marker; ignoring it", "error", err)
	}
	if m == nil {
		return
	}
	reason := status.ReasonBuildCrashed
	msg := fmt.Sprintf("the process died while building it (build started %s); a revision that kills the process is not built again", m.Started.Format(time.RFC3339))
	if m.Reason != "" {
		reason = status.ReasonMemoryBudget
		msg = fmt.Sprintf("%s (build started %s); the process exited and the revision is not built again", m.Reason, m.Started.Format(time.RFC3339))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// It is the last attempted revision: the summary says it failed, and
	// the source step does not build it again.
	r.st.LastAttemptedRevision = m.Revision
	known := false
	for _, f := range r.state.Failed {
		known = known || f.Revision == m.Revision
	}
	if !known { // a build abandoned at its deadline is recorded already
		r.recordFailedLocked(status.FailedRevision{Revision: m.Revision, Reason: reason, Message: msg, At: time.Now().UTC()})
		r.log.Error("the previous process died while building a revision; it is recorded failed and not built again until a new commit arrives",
			"revision", m.Revision, "reason", reason, "message", msg)
	}
	if err := r.opts.Store.ClearBuilding(); err != nil {
		r.log.Error("removing the build marker", "error", err)
	}
}

// recordFailedLocked adds fr to the failed revisions (the last keptFailed
// are kept) and persists them. Caller holds r.mu.
func (r *Reconciler) recordFailedLocked(fr status.FailedRevision) {
	r.state.addFailed(fr)
	r.st.FailedRevisions = r.state.Failed
	if err := r.opts.Store.Save(&r.state); err != nil {
		r.log.Error("persist state", "error", err)
	}
}

// refuseLocked records that rev cannot be served (Stalled=True with
// reason): nothing served changes, and rev is not built again until a new
// commit arrives. Caller holds r.mu.
func (r *Reconciler) refuseLocked(rev source.Revision, reason string, err error) {
	r.refused = &problem{reason: reason, message: fmt.Sprintf("revision %s cannot be served: %v", rev, err)}
	r.built = true
	r.opts.Metrics.Failures.WithLabelValues(reason).Inc()
	r.opts.Metrics.Reconciles.WithLabelValues("failed").Inc()
	r.log.Error("revision refused", "revision", rev.String(), "reason", reason, "error", err)
}

// checkHistory warns when the branch moved to a commit that does not
// descend from the applied one (a force-push, or a move backwards). The
// revision is applied all the same, as Flux does; status.Source.ForcePush
// says it until a later revision descends from the applied one.
func (r *Reconciler) checkHistory(ctx context.Context, rev source.Revision) {
	anc, ok := r.opts.Source.(ancestry)
	if !ok {
		return
	}
	r.mu.Lock()
	applied := r.st.LastAppliedRevision
	r.mu.Unlock()
	prev, err := source.ParseRevision(applied)
	if err != nil || prev.Ref != rev.Ref || prev.Hash == rev.Hash {
		return
	}
	descends, known, err := anc.Descends(ctx, rev, prev.Hash)
	if err != nil || !known {
		if err != nil {
			r.log.Info("cannot tell whether the new revision descends from the applied one", "revision", rev.String(), "applied", applied, "error", err)
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if descends {
		r.st.Source.ForcePush = ""
		return
	}
	msg := fmt.Sprintf("%s moved from %s to %s, which does not descend from it (a force-push or a move backwards); applied like any new commit", rev.Ref, prev.Short(), rev.Short())
	r.st.Source.ForcePush = msg
	r.log.Warn("the branch was force-pushed: the new revision does not descend from the applied one", "revision", rev.String(), "applied", applied)
}

// reconcileRollout is the last step: startRollout decides how the build
// reaches the fleet.
func (r *Reconciler) reconcileRollout(_ context.Context, p *pass) (bool, error) {
	r.startRollout(p.build)
	return false, nil
}

// startRollout records b's objects' status and decides how b reaches the
// fleet: not at all when nothing served changes, at once when it equals
// the last good version (a revert during a rollout), with the fast path
// when it equals a version that completed a rollout, otherwise through the
// RolloutPolicy (the last one that compiled when b's is rejected). Under
// high availability only the leader decides (decideHA). It records the
// rollout in progress (r.building); how the rollout ends comes back
// through onRolloutDone.
func (r *Reconciler) startRollout(b *pipeline.Result) {
	r.mu.Lock()
	r.inBuild, r.built = "", true
	go r.describeChanges(b, r.state.LastGood)
	rejected := b.Rejected()
	r.st.Objects = b.Model.Status
	r.st.Warnings = nil
	if b.Rendered != nil { // nil from builders other than the Pipeline
		r.st.Warnings = b.Rendered.Warnings
		for _, w := range b.Rendered.Warnings {
			r.log.Warn("render warning", "revision", b.Revision, "warning", w)
		}
	}
	r.opts.Metrics.RejectedObjects.Set(float64(len(rejected)))
	pol, polErr := rollout.Compile(b.Model.Rollout)
	if polErr != nil {
		if r.policy == nil {
			pol = rollout.AllAtOnce()
		} else {
			pol = r.policy
		}
		r.log.Warn("RolloutPolicy rejected; using the last one that compiled", "error", polErr)
	} else {
		r.policy = pol
	}
	if r.ha != nil && !r.decideHA(b) {
		// A follower: the leader starts the rollout; this replica's
		// applier serves it.
		r.mu.Unlock()
		return
	}
	hash := b.Set.Hash()
	lastGood := r.state.LastGood
	activeHash, active := r.engine.Active()
	switch {
	case lastGood != nil && hash == lastGood.Hash() && !active:
		// Nothing served changes: applied at once, as Flux does.
		r.markApplied(b, "no change to what is served")
		r.mu.Unlock()
		return
	case active && hash == activeHash:
		// Same content as the rollout in progress: let it go on.
		r.building = b
		r.mu.Unlock()
		return
	}
	fast := ""
	if rev, ok := r.state.Applied[hash]; ok {
		fast = fmt.Sprintf("served config equals %s, which completed a rollout", rev)
	}
	r.building = b
	r.mu.Unlock()

	if lastGood != nil && hash == lastGood.Hash() {
		// Back to last good while a rollout is in progress: stop it.
		// Supersede waits for the rollout's goroutine, whose callbacks
		// take r.mu.
		r.engine.Supersede()
		r.mu.Lock()
		r.markApplied(b, "reverted to the last good version while a rollout was in progress")
		r.mu.Unlock()
		return
	}
	r.engine.Start(rollout.Plan{Revision: b.Revision, Target: b.Set, LastGood: lastGood, Policy: pol, FastPath: fast, Resume: r.resumable(b)})
	r.opts.Metrics.Reconciles.WithLabelValues("rolling_out").Inc()
}

// markApplied records b as applied without a rollout. Caller holds r.mu.
func (r *Reconciler) markApplied(b *pipeline.Result, why string) {
	r.st.LastAppliedRevision = b.Revision
	r.opts.Metrics.SetRevision("applied", b.Revision)
	r.state.remember(b.Model)
	r.state.LastGoodRevision = b.Revision
	if err := r.opts.Store.Save(&r.state); err != nil {
		r.log.Error("persist state", "error", err)
	}
	r.building = nil
	r.appliedNote = why
	r.opts.Metrics.Reconciles.WithLabelValues("unchanged").Inc()
	r.log.Info("revision applied at once", "revision", b.Revision, "why", why)
}

func (r *Reconciler) onRolloutChange(ro status.Rollout) {
	r.opts.Metrics.RolloutStage.WithLabelValues().Set(float64(ro.StageIdx))
	// Persist progress (at most every 500ms, and every phase change), so a
	// restart knows what it interrupted.
	r.mu.Lock()
	due := time.Since(r.rolloutSaved) > 500*time.Millisecond || ro.Phase != rollout.Progressing
	if due {
		r.rolloutSaved = time.Now()
	}
	if ro.Stage != r.rolloutStage && r.building != nil && ro.Hash == r.building.Set.Hash() {
		// The rollout reached a new stage: the conditions and the event
		// name it.
		r.rolloutStage = ro.Stage
		r.summarize()
	}
	r.mu.Unlock()
	if due && r.ha == nil { // fleet-wide, the rollout lives on the Board
		if err := r.opts.Store.SaveRollout(ro); err != nil {
			r.log.Error("persist rollout", "error", err)
		}
	}
}

func (r *Reconciler) onRolloutDone(res rollout.Result) {
	r.opts.Metrics.RolloutStage.WithLabelValues().Set(-1)
	r.opts.Metrics.Rollouts.WithLabelValues(string(res.Phase)).Inc()
	if res.Phase == rollout.Superseded {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ha != nil {
		// Every replica, this one too, records the outcome from the
		// FleetState its applier serves (onFleetState).
		if r.building != nil && r.building.Set.Hash() == res.Plan.Target.Hash() {
			r.building = nil
		}
		if res.Phase == rollout.Succeeded && r.adoptLastGood(res.Plan.Revision, res.Plan.Target, res.Plan.FastPath) {
			// At once, so that the next rollout goes from it; the applier
			// records the same when the FleetState reaches it.
			if err := r.opts.Store.Save(&r.state); err != nil {
				r.log.Error("persist state", "error", err)
			}
		}
		r.summarize()
		return
	}
	b := r.building
	if b == nil || b.Set.Hash() != res.Plan.Target.Hash() {
		b = nil
	}
	r.building = nil
	switch res.Phase {
	case rollout.Succeeded:
		rev := res.Plan.Revision
		if b != nil {
			rev = b.Revision
			r.state.remember(b.Model)
		}
		r.recordSucceededLocked(rev, res.Plan.Target, res.Plan.FastPath)
	case rollout.Failed, rollout.Aborted:
		fr := status.FailedRevision{Revision: res.Plan.Revision, Hash: res.Plan.Target.Hash(),
			Reason: res.Reason, Message: res.Message, At: time.Now().UTC()}
		r.state.addFailed(fr)
		r.st.FailedRevisions = r.state.Failed // persisted below
		r.opts.Metrics.Failures.WithLabelValues(status.ReasonRolloutFailed).Inc()
	}
	if err := r.opts.Store.Save(&r.state); err != nil {
		r.log.Error("persist state", "error", err)
	}
	r.summarize()
}

// recordSucceededLocked makes target, revision's Set, the last good: a
// revert to it may skip the stages, and Ready names it (with how it got
// there when the rollout took the fast path). The caller persists the
// state. Caller holds r.mu.
func (r *Reconciler) recordSucceededLocked(revision string, target *snapshot.Set, fastPath string) {
	r.state.LastGood, r.state.LastGoodRevision = target, revision
	if r.state.Applied == nil {
		r.state.Applied = map[string]string{}
	}
	r.state.Applied[target.Hash()] = revision
	r.st.LastAppliedRevision, r.st.LastAppliedHash = revision, target.Hash()
	r.appliedNote = ""
	if fastPath != "" {
		r.appliedNote = "every node at once: " + fastPath
	}
	r.opts.Metrics.SetRevision("applied", revision)
}

// touch marks the status as changed. Caller holds r.mu.
func (r *Reconciler) touch() {
	r.st.ObservedAt = time.Now().UTC()
	r.observe()
}

func orNone(rev string) string {
	if rev == "" {
		return "nothing yet"
	}
	return rev
}
