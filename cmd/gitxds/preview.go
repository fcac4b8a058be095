package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/reconciler/diff/accept"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/preview"
	"gitxds.dev/gitxds/reconciler/render"
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
			p, err := runPreview(c.Context(), &f, base, head, preview.Options{XDSTimeout: xdsTimeout, SkipXDS: skipXDS, AllListeners: allLis})
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
				return invalid("%s", preview.Verdict(p))
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

// runPreview is preview.Run on the repository of the flags; every error
// it returns is an I/O error (exit 2): a ref that does not exist, an
// unreachable repository, an xDS check that could not run.
func runPreview(ctx context.Context, f *repoFlags, baseRef, headRef string, opts preview.Options) (*preview.Report, error) {
	opts.Path = f.path
	opts.Render = render.Options{Limits: renderLimits(f.maxFileSize, f.maxObjectsPerTeam)}
	opts.SystemCAFile = f.systemCAFile
	opts.Services = model.Services{ClusterDomain: f.clusterDomain}
	p, err := preview.Run(ctx, f.load, baseRef, headRef, opts)
	if ue := f.noOverlay(err); ue != nil {
		return nil, ue
	}
	if err != nil {
		return nil, ioErr(err)
	}
	return p, nil
}

// renderedObjects are the objects a build rendered; none without a build.
func renderedObjects(b *pipeline.Result) []render.Object { return preview.RenderedObjects(b) }
