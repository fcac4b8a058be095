// Package preview is what `gitxds preview` runs: it builds the base and the
// head of a pull request (the head after the base, as serve would build it),
// validates the head, diffs what the fleet would serve, describes the blast
// radius and the head's rollout stages, and checks the head with real xDS
// clients. The CLI adds its flags and output formats; the demo runs the same
// code against its own repository.
package preview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/diff/accept"
	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
)

// Loader returns the tree of a ref and its revision (as status reports it,
// e.g. "main@sha1:…").
type Loader func(ctx context.Context, ref string) (filesys.FileSystem, string, error)

// Options of a preview.
type Options struct {
	// Path is the overlay directory, e.g. overlays/production.
	Path string
	// Render options of the pipeline (limits).
	Render render.Options
	// SystemCAFile is the pipeline's SystemCAFile (--system-ca-file).
	SystemCAFile string
	// Services is the pipeline's Services (--cluster-domain).
	Services model.Services
	// XDSTimeout bounds the xDS clients' ACK of the head
	// (accept.DefaultTimeout when zero).
	XDSTimeout time.Duration
	// SkipXDS does not serve the head to xDS clients.
	SkipXDS bool
	// AllListeners connects a gRPC client to every API listener, not one per
	// virtual host.
	AllListeners bool
}

// GitLoader loads refs of a Git repository (a file://, http(s):// or ssh://
// URL, or a local path) the way serve fetches them.
func GitLoader(url string, limits source.Limits) Loader {
	return func(ctx context.Context, ref string) (filesys.FileSystem, string, error) {
		src, err := source.New(source.Options{URL: url, Ref: ref, MaxFileSize: limits.MaxFileSize, MaxRepoSize: limits.MaxRepoSize})
		if err != nil {
			return nil, "", err
		}
		rev, err := src.Resolve(ctx, ref)
		if err != nil {
			return nil, "", err
		}
		fsys, err := src.FS(ctx, rev)
		if err != nil {
			return nil, "", err
		}
		return fsys, rev.String(), nil
	}
}

// side is one revision of the preview: its build, or why there is none.
type side struct {
	ref   string
	rev   string
	build *pipeline.Result
	err   error // render, model or translate failure
}

// loadSide loads and builds one ref. A load error is returned; a failure
// to build is kept in side.err.
func loadSide(ctx context.Context, load Loader, pipe *pipeline.Pipeline, path, ref string, last *model.Memory) (*side, error) {
	fsys, rev, err := load(ctx, ref)
	if err != nil {
		return nil, err
	}
	s := &side{ref: ref, rev: rev}
	s.build, s.err = pipe.Run(fsys, path, rev, last)
	return s, nil
}

// Run builds the base, then the head after it, then validates, diffs, and
// checks the head with real xDS clients. An error is a load error (a ref
// that does not exist, an unreachable repository) or a failure of the xDS
// check itself; a head that is invalid is a Preview with Valid false.
func Run(ctx context.Context, load Loader, baseRef, headRef string, opts Options) (*Report, error) {
	// The xDS check of the head starts as soon as the head is built,
	// while the base may still be building.
	type checked struct {
		res *accept.Result
		err error
	}
	var xdsc chan checked
	var sides [2]*side
	var errs [2]error
	// One pipeline for both sides: the unchanged teams' shards and objects
	// are rendered and decoded once.
	pipe := pipeline.New(opts.Render)
	pipe.SystemCAFile = opts.SystemCAFile
	pipe.Services = opts.Services
	// The head is built as serve would build it after the base: an object
	// rejected in the head keeps its accepted version of the base, and
	// conflicts go to the objects of the base. So the base comes first.
	var wg sync.WaitGroup
	wg.Go(func() {
		sides[0], errs[0] = loadSide(ctx, load, pipe, opts.Path, baseRef, nil)
		if errs[0] != nil {
			return
		}
		var last *model.Memory
		if sides[0].build != nil {
			last = sides[0].build.Model.Memory()
		}
		sides[1], errs[1] = loadSide(ctx, load, pipe, opts.Path, headRef, last)
		if errs[1] != nil || sides[1].build == nil || opts.SkipXDS {
			return
		}
		xdsc = make(chan checked, 1)
		go func() {
			res, err := accept.Check(ctx, sides[1].build.Set, accept.Options{Timeout: opts.XDSTimeout, AllListeners: opts.AllListeners})
			xdsc <- checked{res, err}
		}()
	})
	wg.Wait()
	if xdsc != nil {
		// Whatever happens next, do not leave the check's server running.
		defer func() {
			if xdsc != nil {
				<-xdsc
			}
		}()
	}
	if err := errors.Join(errs[0], errs[1]); err != nil {
		return nil, err
	}
	b, h := sides[0], sides[1]
	// An overlay in neither revision: the path is wrong, not the change
	// (one the head removes is the head's problem).
	if errors.Is(b.err, render.ErrNoOverlay) && errors.Is(h.err, render.ErrNoOverlay) {
		return nil, b.err
	}
	p := &Report{
		BaseRef:  Side{Ref: b.ref, Revision: b.rev, Error: errString(b.err)},
		HeadRef:  Side{Ref: h.ref, Revision: h.rev, Error: errString(h.err)},
		Problems: []diff.Problem{},
	}
	if h.build == nil {
		return p, nil
	}
	p.Objects = len(h.build.Model.Status)
	p.Problems = diff.Problems(h.build.Model.Status)
	var irs []*ir.IR
	var baseSet *snapshot.Set // nil: the base cannot be rendered, compare with nothing
	if b.build != nil {
		baseSet = b.build.Set
		irs = append(irs, b.build.Model.IR)
	}
	irs = append(irs, h.build.Model.IR)
	p.Diff = diff.Snapshots(baseSet, h.build.Set)
	p.Diff.Owners(irs...)
	p.Diff.Objects = diff.ObjectChanges(RenderedObjects(b.build), RenderedObjects(h.build), h.build.Model.Status)
	p.Impact = Impact{Impact: p.Diff.Impact(irs...), Rollout: rolloutOf(h.build, p.Diff)}
	p.Valid = len(p.Problems) == 0 && p.Impact.Rollout.Error == ""
	if xdsc != nil {
		got := <-xdsc
		xdsc = nil
		if got.err != nil {
			return nil, got.err
		}
		p.XDS = got.res
		p.Valid = p.Valid && got.res.Accepted
	}
	return p, nil
}

// RenderedObjects are the objects a build rendered; none without a build.
func RenderedObjects(b *pipeline.Result) []render.Object {
	if b == nil || b.Rendered == nil {
		return nil
	}
	return b.Rendered.Objects
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// rolloutOf describes the stages of the head's RolloutPolicy.
func rolloutOf(b *pipeline.Result, rep *diff.Report) Rollout {
	r := Rollout{Skipped: !rep.Different, Stages: []Stage{}}
	src := b.Model.Rollout
	pol, err := rollout.Compile(src)
	switch {
	case err != nil:
		r.Policy = "RolloutPolicy " + src.Name + " of the head"
		r.Error = "RolloutPolicy: " + err.Error()
		return r
	case src == nil:
		r.Policy = "no RolloutPolicy in the head: all nodes at once, ACK timeout " + pol.AckTimeout.String()
	default:
		r.Policy = fmt.Sprintf("RolloutPolicy %s of the head, ACK timeout %s", src.Name, pol.AckTimeout)
	}
	for _, s := range pol.Stages {
		var nodes []string
		if s.Selector != nil {
			nodes = append(nodes, "nodes labelled "+s.Selector.String())
		}
		if s.Percent >= 0 {
			nodes = append(nodes, fmt.Sprintf("%d%% of all nodes (stable hash of the node id)", s.Percent))
		}
		st := Stage{Name: s.Name, Nodes: strings.Join(nodes, " or ")}
		if s.Bake > 0 {
			st.Bake = s.Bake.String()
		}
		r.Stages = append(r.Stages, st)
	}
	return r
}

// Verdict is the error line of an invalid preview.
func Verdict(p *Report) string {
	var why []string
	if p.HeadRef.Error != "" {
		why = append(why, "the head cannot be rendered: "+p.HeadRef.Error)
	}
	if n := len(p.Problems); n > 0 {
		why = append(why, fmt.Sprintf("%d of %d object(s) not accepted: %s", n, p.Objects, diff.Tally(p.Problems)))
	}
	if p.Impact.Rollout.Error != "" {
		why = append(why, "its RolloutPolicy is invalid")
	}
	if p.XDS != nil && !p.XDS.Accepted {
		why = append(why, "an xDS client did not accept it")
	}
	return "head " + p.HeadRef.Ref + " is invalid: " + strings.Join(why, "; ")
}
