// Package pipeline runs the pure stages of gitxds on one revision's tree:
//
//	render ──> model ──> translate (──> patches)
//
// Pipeline is their one constructor: the control loop of `gitxds serve`
// (package reconciler) and the offline commands (render, validate, diff,
// preview) all build revisions through it. It does no I/O but reading the
// tree it is given, and links none of the xDS server, the rollout, the
// state directory or the daemon (testenv/docs checks the import graph).
package pipeline

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/translate"
)

// TranslateFunc turns an IR into xDS resources. It is the translator's seam:
// production uses translate.Translate, fault-injection tests wrap it.
type TranslateFunc func(x *ir.IR, revision string) (*snapshot.Set, error)

// Pipeline runs render, model and translate on a repository tree.
type Pipeline struct {
	Render    render.Options
	Translate TranslateFunc
	// SystemCAFile is model.Input.SystemCAFile.
	SystemCAFile string
	// Services says how Kubernetes Service backendRefs resolve.
	Services model.Services
	// Cluster is model.Input.Cluster: the Kubernetes cluster's Secrets and
	// Services, checked as listeners and routes reference them; nil leaves
	// them unchecked.
	Cluster model.Cluster
	// AddressPolicy, when set, is given the backend address policy of each
	// revision the model builds, for endpoints discovered at run time.
	AddressPolicy func(check func(netip.Addr) string)

	// decoded caches object decoding across the revisions this pipeline
	// builds (most objects of a new commit are unchanged).
	decoded model.DecodeCache
}

// New returns the pipeline with the production stages.
func New(ropts render.Options) *Pipeline {
	return &Pipeline{Render: ropts, Translate: translate.Translate}
}

// Result is what the pipeline made of one revision.
type Result struct {
	Revision string
	Rendered *render.Result
	Model    *model.Output
	Set      *snapshot.Set
	// Took is how long each step took (the scale harness reports them).
	Took map[Step]time.Duration
}

// Rejected returns the objects of the build that are not fully accepted.
func (b *Result) Rejected() []status.Object { return status.Rejected(b.Model.Status) }

// Step is a step of the pipeline.
type Step string

const (
	StepRender    Step = "render"
	StepModel     Step = "model"
	StepTranslate Step = "translate"
)

// Reason is the status reason of a build that failed at this step.
func (s Step) Reason() string {
	switch s {
	case StepModel:
		return status.ReasonModelFailed
	case StepTranslate:
		return status.ReasonTranslateFailed
	}
	return status.ReasonRenderFailed
}

// Error is the failure of a whole pipeline step: nothing of the
// revision can be served.
type Error struct {
	Step     Step
	Revision string
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Step, e.Revision, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Run renders overlay from fsys, builds the model (falling back to the last
// accepted versions of last for objects that became invalid, deciding
// conflicts by the ages of last; nil on a first run) and translates it.
func (p *Pipeline) Run(fsys filesys.FileSystem, overlay, revision string, last *model.Memory) (*Result, error) {
	t0 := time.Now()
	rendered, err := render.Render(fsys, overlay, p.Render)
	if err != nil {
		return nil, &Error{Step: StepRender, Revision: revision, Err: err}
	}
	rendered.Warnings = append(rendered.Warnings, render.UndeployedTeams(fsys, overlay, rendered)...)
	t1 := time.Now()
	in := model.Input{Revision: revision, Decoded: &p.decoded, Source: repoFile(fsys), SystemCAFile: p.SystemCAFile, Services: p.Services, Cluster: p.Cluster}
	if last != nil {
		in.LastAccepted, in.FirstAccepted = last.Accepted, last.FirstAccepted
	}
	objs, held := rendered.Objects, heldObjects(rendered.Failed, in.LastAccepted)
	if len(held) > 0 {
		objs = append(slices.Clip(objs), held...)
	}
	in.Objects = objs
	out := model.Build(in)
	if p.AddressPolicy != nil {
		p.AddressPolicy(out.CheckIP)
	}
	reportFailedTeams(out, rendered.Failed, held)
	reportOverlaid(out, rendered.Objects)
	if err := out.IR.Validate(); err != nil {
		return nil, &Error{Step: StepModel, Revision: revision, Err: err}
	}
	t2 := time.Now()
	set, err := p.Translate(out.IR, revision)
	if err != nil {
		return nil, &Error{Step: StepTranslate, Revision: revision, Err: err}
	}
	set = applyPatches(out, set)
	took := map[Step]time.Duration{StepRender: t1.Sub(t0), StepModel: t2.Sub(t1), StepTranslate: time.Since(t2)}
	return &Result{Revision: revision, Rendered: rendered, Model: out, Set: set, Took: took}, nil
}

// repoFile reads a file of the repository held by fsys (rooted at "/"),
// to find the line of a field that does not decode. The render has read
// the file already, within its limits.
func repoFile(fsys filesys.FileSystem) model.SourceFunc {
	return func(file string) ([]byte, error) {
		p := path.Join("/", file)
		if fsys.IsDir(p) {
			return nil, fmt.Errorf("%s is a directory", file)
		}
		return fsys.ReadFile(p)
	}
}

// applyPatches applies the EnvoyPatchPolicies of the build last
// (translate.ApplyPatches); a policy that fails to apply, or whose result
// Envoy would refuse, is left out and its status says why (the rest
// serves).
func applyPatches(out *model.Output, set *snapshot.Set) *snapshot.Set {
	patched, errs := translate.ApplyPatches(out.IR, set)
	for _, err := range errs {
		var e *translate.Error
		if !errors.As(err, &e) {
			continue
		}
		out.RejectAfterTranslate(e.Owner, model.ReasonPatchFailed, fmt.Sprintf("not applied, the generated resources serve unpatched: %v", e.Err))
	}
	return patched
}
