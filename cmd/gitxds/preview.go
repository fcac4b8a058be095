package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/reconciler"
	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/diff/accept"
	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

func newPreview() *cobra.Command {
	var (
		f                  repoFlags
		base, head, output string
		xdsTimeout         time.Duration
		skipXDS, allLis    bool
	)
	c := &cobra.Command{
		Use:   "preview --repo URL|PATH --path OVERLAY --base REF --head REF [-o markdown|json]",
		Short: "Render, validate and diff a pull request against its base, for a PR comment",
		Long: `preview renders the overlay at --base and --head (at once), validates the head, diffs what
the fleet would serve, and reports the blast radius: the teams owning the changed routes and
clusters, the hostnames and listeners touched, and the rollout stages of the head's
RolloutPolicy the change would go through. It then serves the head in process and connects
real xDS clients: gRPC-Go xDS clients (gRPC class; one per virtual host a client can land on,
which fetches every route configuration, cluster and endpoint set a gRPC client can use;
--xds-all-listeners for one per API listener) and an Envoy-like ADS client that validates
every resource (Envoy class), and reports ACK or NACK per type.

-o markdown is made for a pull-request comment (a summary table, details folded); -o json
follows the schema gitxds.dev/preview/v1 (docs/preview-workflow.md).

Exit codes: 0 when the head is valid; 1 when the head cannot be rendered, any of its objects
is rejected (each problem is listed with file, object and reason) or an xDS client NACKs it;
2 on usage or I/O errors (a ref that does not exist, an unreachable repository).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch output {
			case "markdown", "json":
			default:
				return usage(c, "-o %q: want markdown or json", output)
			}
			if base == "" || head == "" {
				return usage(c, "--base and --head are required")
			}
			p, err := runPreview(c.Context(), &f, base, head, previewOptions{xdsTimeout: xdsTimeout, skipXDS: skipXDS, allListeners: allLis})
			if err != nil {
				return err
			}
			for _, pr := range p.Problems {
				fmt.Fprintf(c.ErrOrStderr(), "%s: %s\n", pr.Label(), pr.Line)
			}
			out := c.OutOrStdout()
			if output == "json" {
				err = p.WriteJSON(out)
			} else {
				err = p.WriteMarkdown(out)
			}
			if err != nil {
				return ioErr(err)
			}
			if !p.Valid {
				return invalid("%s", previewVerdict(p))
			}
			return nil
		},
	}
	f.register(c)
	_ = c.Flags().MarkHidden("ref") // --base and --head say it
	c.Flags().StringVar(&base, "base", "", "base revision of the pull request: branch, tag, SHA")
	c.Flags().StringVar(&head, "head", "", "head revision of the pull request: branch, tag, SHA or refs/pull/N/head")
	c.Flags().StringVarP(&output, "output", "o", "markdown", "markdown or json")
	c.Flags().DurationVar(&xdsTimeout, "xds-timeout", accept.DefaultTimeout, "how long the xDS clients may take to ACK the head")
	c.Flags().BoolVar(&skipXDS, "skip-xds", false, "do not serve the head to xDS clients")
	c.Flags().BoolVar(&allLis, "xds-all-listeners", false, "connect a gRPC client to every API listener, not one per virtual host")
	return c
}

type previewOptions struct {
	xdsTimeout   time.Duration
	skipXDS      bool
	allListeners bool
}

// side is one revision of the preview: its build, or why there is none.
type side struct {
	ref   string
	rev   string
	build *reconciler.Build
	err   error // render, model or translate failure
}

// loadSide loads and builds one ref. An I/O error (exit 2) is returned; a
// failure to build is kept in side.err.
func loadSide(ctx context.Context, f *repoFlags, pipe *reconciler.Pipeline, ref string, last *model.Memory) (*side, error) {
	fsys, rev, err := f.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	s := &side{ref: ref, rev: rev}
	s.build, s.err = pipe.Run(fsys, f.path, rev, last)
	return s, nil
}

// runPreview builds the base, then the head after it, then validates, diffs, and
// checks the head with real xDS clients.
func runPreview(ctx context.Context, f *repoFlags, baseRef, headRef string, opts previewOptions) (*diff.Preview, error) {
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
	pipe := reconciler.NewPipeline(render.Options{Limits: renderLimits(f.maxFileSize, f.maxObjectsPerTeam)})
	// The head is built as serve would build it after the base: an object
	// rejected in the head keeps its accepted version of the base, and
	// conflicts go to the objects of the base. So the base comes first.
	var wg sync.WaitGroup
	wg.Go(func() {
		sides[0], errs[0] = loadSide(ctx, f, pipe, baseRef, nil)
		if errs[0] != nil {
			return
		}
		var last *model.Memory
		if sides[0].build != nil {
			last = sides[0].build.Model.Memory()
		}
		sides[1], errs[1] = loadSide(ctx, f, pipe, headRef, last)
		if errs[1] != nil || sides[1].build == nil || opts.skipXDS {
			return
		}
		xdsc = make(chan checked, 1)
		go func() {
			res, err := accept.Check(ctx, sides[1].build.Set, accept.Options{Timeout: opts.xdsTimeout, AllListeners: opts.allListeners})
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
		return nil, ioErr(err)
	}
	b, h := sides[0], sides[1]
	// An overlay in neither revision: --path is wrong. (One the head
	// removes is the head's problem.)
	if ue := f.noOverlay(b.err); ue != nil && f.noOverlay(h.err) != nil {
		return nil, ue
	}
	p := &diff.Preview{
		BaseRef:  diff.PreviewSide{Ref: b.ref, Revision: b.rev, Error: errString(b.err)},
		HeadRef:  diff.PreviewSide{Ref: h.ref, Revision: h.rev, Error: errString(h.err)},
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
	p.Diff.Objects = diff.ObjectChanges(renderedObjects(b.build), renderedObjects(h.build), h.build.Model.Status)
	p.Impact = diff.PreviewImpact{Impact: p.Diff.Impact(irs...), Rollout: rolloutOf(h.build, p.Diff)}
	p.Valid = len(p.Problems) == 0 && p.Impact.Rollout.Error == ""
	if xdsc != nil {
		got := <-xdsc
		xdsc = nil
		if got.err != nil {
			return nil, ioErr(got.err)
		}
		p.XDS = got.res
		p.Valid = p.Valid && got.res.Accepted
	}
	return p, nil
}

// renderedObjects are the objects a build rendered; none without a build.
func renderedObjects(b *reconciler.Build) []render.Object {
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
func rolloutOf(b *reconciler.Build, rep *diff.Report) diff.Rollout {
	r := diff.Rollout{Skipped: !rep.Different, Stages: []diff.Stage{}}
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
		st := diff.Stage{Name: s.Name, Nodes: strings.Join(nodes, " or ")}
		if s.Bake > 0 {
			st.Bake = s.Bake.String()
		}
		r.Stages = append(r.Stages, st)
	}
	return r
}

// previewVerdict is the error line of an invalid preview.
func previewVerdict(p *diff.Preview) string {
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
