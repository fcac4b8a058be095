package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/reconciler/translate"
)

func newRender() *cobra.Command {
	var f repoFlags
	var output string
	c := &cobra.Command{
		Use:   "render --repo URL|PATH [--ref REF] --path OVERLAY [-o json|yaml|resources|ratelimit]",
		Short: "Print the xDS resources an overlay serves (or the rendered objects)",
		Long: `render builds an overlay as the server would and prints the xDS resources as one object
{revision, listeners, routes, clusters, endpoints}, each an array of Envoy v3 resources in
protojson form, deterministic byte for byte. -o resources prints the rendered objects as a
YAML stream, as kustomize build would. -o ratelimit prints the configuration file of the rate
limit service that counts the overlay's global rate limits (the format of Envoy's reference
rate limit service; docs/operations.md, "Global rate limits"). Rejected objects are reported on
stderr; they are left out of what is served, as in the server.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			switch output {
			case "json", "yaml", "resources", "ratelimit":
			default:
				return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: want json, yaml, resources or ratelimit", output)}
			}
			b, err := f.build(c.Context(), f.ref)
			if err != nil {
				return err
			}
			printWarnings(c, b)
			printRejected(c, b)
			out := c.OutOrStdout()
			switch output {
			case "resources":
				_, err = out.Write(b.Rendered.YAML())
				return err
			case "ratelimit":
				rl, err := translate.RateLimitServiceConfig(b.Model.IR)
				if err != nil {
					return err
				}
				_, err = out.Write(rl)
				return err
			}
			js, err := snapshot.RenderJSON(b.Set)
			if err != nil {
				return err
			}
			if output == "yaml" {
				if js, err = yaml.JSONToYAML(js); err != nil {
					return err
				}
			}
			_, err = out.Write(js)
			return err
		},
	}
	f.register(c)
	c.Flags().StringVarP(&output, "output", "o", "json", "json, yaml, resources or ratelimit")
	return c
}

func newValidate() *cobra.Command {
	var f repoFlags
	var output string
	c := &cobra.Command{
		Use:   "validate --repo URL|PATH [--ref REF] --path OVERLAY",
		Short: "Check that every object of an overlay is accepted (exit 1 if not)",
		Long: `validate renders and models an overlay and prints one line per problem:
<served>: <file>: <Kind namespace/name>: <reason>: <message>, where <served> is "rejected"
(nothing of the object is served) or "served in part" (accepted with a problem: a reference
unresolved, a hostname or listener lost, a match shadowed; the rest is served). It exits 0
when every object is accepted, 1 when any is not (rejected or served in part) or the
overlay cannot be rendered, 2 on usage or I/O errors (a --path that names no overlay).
Warnings go to stderr and do not change the exit code: "warning: <dir>/ is not deployed by
<overlay>" for a team directory of the layout the overlay does not include.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: want text or json", output)}
			}
			b, err := f.build(c.Context(), f.ref)
			if err != nil {
				// A revision that cannot be built is one problem line too.
				var be *pipeline.Error
				if errors.As(err, &be) {
					fmt.Fprintln(c.OutOrStdout(), be.Err)
				}
				return err
			}
			probs := diff.Problems(b.Model.Status)
			switch output {
			case "json":
				out := struct {
					Revision string          `json:"revision"`
					Objects  int             `json:"objects"`
					Problems []diff.Problem  `json:"problems"`
					Warnings []string        `json:"warnings"`
					Status   []status.Object `json:"status"`
				}{b.Revision, len(b.Model.Status), append([]diff.Problem{}, probs...), append([]string{}, b.Rendered.Warnings...), b.Model.Status}
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return ioErr(err)
				}
			default:
				printWarnings(c, b)
				for _, p := range probs {
					fmt.Fprintf(c.OutOrStdout(), "%s: %s\n", p.Label(), p.Line)
				}
			}
			if len(probs) > 0 {
				return invalid("%d of %d object(s) not accepted: %s", len(probs), len(b.Model.Status), diff.Tally(probs))
			}
			if output == "text" {
				fmt.Fprintf(c.OutOrStdout(), "%d object(s) accepted\n", len(b.Model.Status))
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVarP(&output, "output", "o", "text", "text or json (the problems and every object's status)")
	_ = c.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
	return c
}

func statusLine(o status.Object) string { return status.Line(o) }
