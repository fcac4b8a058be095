package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// Phases of a rollout, as the engine reports them.
const (
	Progressing = status.RolloutProgressing
	Paused      = status.RolloutPaused
	Succeeded   = status.RolloutSucceeded
	Failed      = status.RolloutFailed
	Superseded  = status.RolloutSuperseded
	Aborted     = status.RolloutAborted
)

// Action is what an operator asks of the rollout in progress.
type Action string

const (
	Pause  Action = "pause"  // hold after the stage in progress
	Resume Action = "resume" // let a paused rollout go on
	Abort  Action = "abort"  // roll every node back and record the revision failed
)

// Actions in the order the CLI lists them.
var Actions = []Action{Pause, Resume, Abort}

// ParseAction returns the action named s.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown rollout action %q (pause, resume, abort)", s)
}

// Plan is one rollout: from LastGood to Target.
type Plan struct {
	Revision string
	Target   *snapshot.Set
	// LastGood is what every node goes back to on failure. Nil only before
	// any revision ever completed a rollout.
	LastGood *snapshot.Set
	Policy   *Policy
	// FastPath, when set, sends Target to every node at once and says why
	// (e.g. the served config equals a version that completed a rollout).
	FastPath string
	// Resume, when set, is the fleet-wide rollout of Target a previous
	// leader left Progressing or Paused: it goes on at its stage, with the
	// rest of its bake.
	Resume *FleetState
}

// Result of a finished rollout.
type Result struct {
	Plan    Plan
	Phase   status.RolloutPhase // Succeeded, Failed, Superseded, Aborted
	Reason  string              // for Failed and Aborted: status.ReasonNACK, ...
	Message string
	Status  status.Rollout
}

// Options of an Engine.
type Options struct {
	Log *slog.Logger
	// NewQuerier returns the metric querier of a Prometheus address;
	// NewPromQuerier when nil.
	NewQuerier func(address string) (Querier, error)
	// OnChange is called (from the rollout goroutine) when the rollout
	// status changes; it must not block for long.
	OnChange func(status.Rollout)
	// OnDone is called once per Start with the result.
	OnDone func(Result)
}

// Engine runs at most one rollout at a time.
type Engine struct {
	reach Reach
	opts  Options

	// mu serializes Start and Stop; readers use cur alone, so status reads
	// never wait for a rollout that is being superseded.
	mu  sync.Mutex
	cur atomic.Pointer[run]
}

// New returns an engine over the nodes of one xDS server (NewLocal).
func New(fleet Fleet, opts Options) *Engine { return NewEngine(NewLocal(fleet), opts) }

// NewEngine returns an engine over a reach: Local, or FleetWide under high
// availability.
func NewEngine(reach Reach, opts Options) *Engine {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.NewQuerier == nil {
		opts.NewQuerier = func(a string) (Querier, error) { return NewPromQuerier(a) }
	}
	return &Engine{reach: reach, opts: opts}
}

type run struct {
	plan    Plan
	cancel  context.CancelCauseFunc
	done    chan struct{}
	control chan Action // pause, resume

	mu     sync.Mutex
	status status.Rollout
}

var (
	errSuperseded = errors.New("superseded by a new revision")
	errStopped    = errors.New("stopped with the process")
	errAborted    = errors.New("aborted by an operator")
	errFenced     = errors.New("fenced: a newer leader owns the fleet-wide rollout")
)

// ReasonFenced is the Reason of a Superseded result when a newer leader
// fenced this one.
const ReasonFenced = "Fenced"

// Start begins a rollout. A rollout in progress is superseded: it stops, its
// nodes go back to the last good version, and the new one starts from the
// first stage.
func (e *Engine) Start(plan Plan) {
	if plan.Policy == nil {
		plan.Policy = AllAtOnce()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.cur.Load(); cur != nil {
		cur.cancel(errSuperseded)
		<-cur.done
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &run{plan: plan, cancel: cancel, done: make(chan struct{}), control: make(chan Action, 4)}
	r.status = status.Rollout{Revision: plan.Revision, Hash: plan.Target.Hash(), Phase: Progressing,
		StartedAt: time.Now().UTC(), FastPath: plan.FastPath}
	if plan.Resume != nil && !plan.Resume.StartedAt.IsZero() {
		r.status.StartedAt = plan.Resume.StartedAt
	}
	for _, s := range plan.Policy.Stages {
		r.status.Stages = append(r.status.Stages, status.Stage{Name: s.Name, Phase: status.StagePending, Bake: bakeString(s.Bake)})
	}
	e.cur.Store(r)
	go e.loop(ctx, r)
}

// Supersede ends the rollout in progress, if any, and waits for it: its
// nodes go back to the last good version (Superseded).
func (e *Engine) Supersede() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.cur.Load(); cur != nil {
		cur.cancel(errSuperseded)
		<-cur.done
	}
}

// Stop ends the rollout in progress, if any, as the process stops, and
// waits for it: a single replica rolls its nodes back (Superseded); a
// fleet-wide rollout is left for the next leader to resume.
func (e *Engine) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.cur.Load(); cur != nil {
		cur.cancel(errStopped)
		<-cur.done
	}
}

// Status of the current or last rollout; ok is false before the first.
func (e *Engine) Status() (st status.Rollout, ok bool) {
	r := e.cur.Load()
	if r == nil {
		return status.Rollout{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return copyStatus(r.status), true
}

// Active reports whether a rollout is in progress, and of which hash.
func (e *Engine) Active() (hash string, ok bool) {
	r := e.cur.Load()
	if r == nil {
		return "", false
	}
	select {
	case <-r.done:
		return "", false
	default:
		return r.plan.Target.Hash(), true
	}
}

// Control pauses, resumes or aborts the rollout in progress.
func (e *Engine) Control(action Action) error {
	if _, err := ParseAction(string(action)); err != nil {
		return err
	}
	r := e.cur.Load()
	if r == nil {
		return fmt.Errorf("no rollout in progress")
	}
	select {
	case <-r.done:
		return fmt.Errorf("no rollout in progress")
	default:
	}
	if action == Abort {
		r.cancel(errAborted)
		return nil
	}
	r.control <- action
	return nil
}

func copyStatus(s status.Rollout) status.Rollout {
	s.Stages = append([]status.Stage(nil), s.Stages...)
	for i := range s.Stages {
		s.Stages[i].Nodes = append([]string(nil), s.Stages[i].Nodes...)
		s.Stages[i].Gates = append([]status.GateValue(nil), s.Stages[i].Gates...)
	}
	return s
}

func (e *Engine) update(r *run, f func(*status.Rollout)) {
	r.mu.Lock()
	f(&r.status)
	st := copyStatus(r.status)
	r.mu.Unlock()
	if e.opts.OnChange != nil {
		e.opts.OnChange(st)
	}
}

// failure is why a rollout must roll back.
type failure struct {
	reason, msg string
}

func (f *failure) Error() string { return f.msg }

func (e *Engine) loop(ctx context.Context, r *run) {
	defer close(r.done)
	p, pol, log := r.plan, r.plan.Policy, e.opts.Log.With("revision", r.plan.Revision, "hash", r.plan.Target.Hash())

	stages := pol.Stages
	if p.FastPath != "" {
		stages = []Stage{{Name: "all", Percent: 100}}
		e.update(r, func(s *status.Rollout) {
			s.Stages = []status.Stage{{Name: "all", Phase: status.StagePending}}
		})
		log.Info("rollout: fast path, every node at once", "why", p.FastPath)
	} else {
		log.Info("rollout: started", "stages", len(stages))
	}
	e.reach.Begin(p, stages)
	st := &stageRun{e: e, r: r, reach: e.reach, log: log}
	if rs := p.Resume; rs != nil && rs.Stage > 0 && rs.Stage < len(stages) {
		st.from, st.bakeUntil, st.paused = rs.Stage, rs.BakeUntil, rs.Phase == Paused
		e.update(r, func(s *status.Rollout) {
			for i := 0; i < rs.Stage; i++ {
				s.Stages[i].Phase = status.StagePassed
			}
			if st.paused {
				s.Phase = Paused
			}
		})
		log.Info("rollout: resumed from a previous leader", "stage", stages[rs.Stage].Name, "bakeUntil", rs.BakeUntil)
	} else if rs != nil {
		st.bakeUntil, st.paused = rs.BakeUntil, rs.Phase == Paused
	}

	var err error
	for i := st.from; i < len(stages); i++ {
		if err = st.run(ctx, i, stages); err != nil {
			break
		}
	}
	res := Result{}
	stopped := false
	switch cause := context.Cause(ctx); {
	case err == nil:
		res.Phase, res.Message = Succeeded, fmt.Sprintf("rolled out to %d node(s)", e.reach.Moved())
	case err == errFenced:
		res.Phase, res.Reason, res.Message, stopped = Superseded, ReasonFenced, "a newer leader owns the fleet-wide rollout; this replica stopped deciding", true
	case ctx.Err() != nil && (cause == errSuperseded || cause == errStopped):
		res.Phase, res.Message, stopped = Superseded, "superseded by a newer revision; nodes back on the last good version", cause == errStopped
	case ctx.Err() != nil && cause == errAborted:
		res.Phase, res.Reason, res.Message = Aborted, status.ReasonAborted, "aborted by an operator; nodes back on the last good version"
	default:
		res.Phase, res.Message = Failed, err.Error()
		if f, ok := err.(*failure); ok {
			res.Reason = f.reason
		}
	}
	e.reach.End(res, stopped)
	if res.Phase == Succeeded {
		log.Info("rollout: succeeded", "nodes", e.reach.Moved())
	} else {
		log.Warn("rollout: rolled back", "phase", res.Phase, "reason", res.Reason, "message", res.Message)
	}
	e.finish(r, res)
}

func (e *Engine) finish(r *run, res Result) {
	res.Plan = r.plan
	e.update(r, func(s *status.Rollout) {
		s.Phase = res.Phase
		s.Message = res.Message
	})
	r.mu.Lock()
	res.Status = copyStatus(r.status)
	r.mu.Unlock()
	if e.opts.OnDone != nil {
		e.opts.OnDone(res)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func bakeString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}
