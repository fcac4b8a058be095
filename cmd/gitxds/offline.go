package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/source"
)

// repoFlags are the flags every offline command shares.
type repoFlags struct {
	repo, ref, path          string
	maxFileSize, maxRepoSize int64
	maxObjectsPerTeam        int
	systemCAFile             string
	clusterDomain            string
}

func (f *repoFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.repo, "repo", ".", "repository: a local path, or a file://, http(s):// or ssh:// URL")
	c.Flags().StringVar(&f.ref, "ref", "", "branch, tag or commit to read (default: the work tree of a local path, HEAD of a URL)")
	c.Flags().StringVar(&f.path, "path", "", "overlay directory inside the repository, e.g. overlays/production")
	c.Flags().Int64Var(&f.maxFileSize, "max-file-size", 0, "largest file read from the repository in bytes (default 1 MiB)")
	c.Flags().Int64Var(&f.maxRepoSize, "max-repo-size", 0, "largest repository tree in bytes (default 64 MiB)")
	c.Flags().IntVar(&f.maxObjectsPerTeam, "max-objects-per-team", 0, "most objects one team directory may list (default 500)")
	c.Flags().StringVar(&f.systemCAFile, "system-ca-file", "", "CA bundle on the proxy hosts that BackendTLSPolicy wellKnownCACertificates: System trusts (default "+model.DefaultSystemCAFile+")")
	c.Flags().StringVar(&f.clusterDomain, "cluster-domain", model.DefaultClusterDomain, "DNS domain of Kubernetes Services: a Service backendRef is <name>.<namespace>.svc.<domain>, resolved by the proxies")
	_ = c.MarkFlagRequired("path")
}

// pipeline is the pipeline of the offline commands: without Kubernetes
// access, Services resolve by DNS.
func (f *repoFlags) pipeline() *pipeline.Pipeline {
	p := pipeline.New(render.Options{Limits: renderLimits(f.maxFileSize, f.maxObjectsPerTeam)})
	p.SystemCAFile = f.systemCAFile
	p.Services = model.Services{ClusterDomain: f.clusterDomain}
	return p
}

func (f *repoFlags) limits() source.Limits {
	return source.Limits{MaxFileSize: f.maxFileSize, MaxRepoSize: f.maxRepoSize}
}

// load returns the tree of --ref (or of the work tree of a local --repo when
// --ref is not given) and its revision.
func (f *repoFlags) load(ctx context.Context, ref string) (filesys.FileSystem, string, error) {
	if ref == "" {
		if st, err := os.Stat(f.repo); err == nil && st.IsDir() {
			fsys, err := source.WorktreeFS(f.repo, f.limits())
			if err != nil {
				return nil, "", sourceErr(err)
			}
			abs, _ := filepath.Abs(f.repo)
			return fsys, "worktree:" + abs, nil
		}
		ref = "HEAD"
	}
	src, err := source.New(source.Options{URL: f.repo, Ref: ref, MaxFileSize: f.maxFileSize, MaxRepoSize: f.maxRepoSize})
	if err != nil {
		return nil, "", ioErr(err)
	}
	rev, err := src.Resolve(ctx, ref)
	if err != nil {
		return nil, "", ioErr(err)
	}
	fsys, err := src.FS(ctx, rev)
	if err != nil {
		return nil, "", sourceErr(err)
	}
	return fsys, rev.String(), nil
}

// build runs the pipeline on a revision. A render or translate failure is
// invalid config (exit 1).
func (f *repoFlags) build(ctx context.Context, ref string) (*pipeline.Result, error) {
	return f.buildAfter(ctx, ref, nil)
}

// buildAfter builds a revision as serve would build it after a revision
// whose model kept last: a rejected object keeps its last accepted
// version there, and conflicts go to the objects accepted before.
func (f *repoFlags) buildAfter(ctx context.Context, ref string, last *model.Memory) (*pipeline.Result, error) {
	fsys, rev, err := f.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	b, err := f.pipeline().Run(fsys, f.path, rev, last)
	if err != nil {
		if ue := f.noOverlay(err); ue != nil {
			return nil, ue
		}
		return nil, &exitError{code: exitInvalid, err: err}
	}
	return b, nil
}

// noOverlay is a usage error (exit 2) when err says --path names no
// overlay of the repository, else nil.
func (f *repoFlags) noOverlay(err error) error {
	var re *render.Error
	if !errors.Is(err, render.ErrNoOverlay) || !errors.As(err, &re) {
		return nil
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("--path %s: %w", f.path, re.Err)}
}

// renderLimits are the render's limits for the flags: files may be as large
// as the source lets them be.
func renderLimits(maxFileSize int64, maxObjectsPerTeam int) render.Limits {
	return render.Limits{FileBytes: int(maxFileSize), ObjectsPerTeam: maxObjectsPerTeam}
}

func ioErr(err error) error { return &exitError{code: exitUsage, err: err} }

// sourceErr is an I/O error, except a file or tree over the size limits,
// which is invalid config.
func sourceErr(err error) error {
	if errors.Is(err, source.ErrTooLarge) {
		return &exitError{code: exitInvalid, err: err}
	}
	return ioErr(err)
}

// printWarnings prints the render's warnings of b on stderr, one a line:
// nothing is refused for them.
func printWarnings(c *cobra.Command, b *pipeline.Result) {
	for _, w := range b.Rendered.Warnings {
		fmt.Fprintf(c.ErrOrStderr(), "warning: %s\n", w)
	}
}

// printRejected lists the objects of b that are not fully accepted, each
// led by what of it is served: "rejected", "served in part" or "rejected;
// keeps serving its last accepted version".
func printRejected(c *cobra.Command, b *pipeline.Result) {
	for _, p := range diff.Problems(b.Model.Status) {
		fmt.Fprintf(c.ErrOrStderr(), "%s: %s\n", p.Label(), p.Line)
	}
}
