package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"gitxds.dev/gitxds/convert/gloo"
)

func newConvert() *cobra.Command {
	c := &cobra.Command{
		Use:   "convert",
		Short: "Convert another gateway's configuration into a gitxds config repository",
	}
	c.AddCommand(newConvertGloo())
	return c
}

func newConvertGloo() *cobra.Command {
	var out string
	var opts gloo.Options
	c := &cobra.Command{
		Use:   "gloo --out DIR FILE|DIR...",
		Short: "Convert Gloo Edge VirtualServices, RouteTables and Upstreams",
		Long: `Reads Gloo Edge VirtualService and RouteTable (gateway.solo.io/v1), Upstream and
UpstreamGroup (gloo.solo.io/v1) objects from the YAML files given, and from the
.yaml/.yml files below the directories given, and writes a gitxds config
repository to --out: platform/ (Namespaces, a Gateway), teams/<namespace>/
(HTTPRoutes, Backends, BackendTrafficPolicies, ReferenceGrants) and
overlays/<env>/.

Everything that does not convert, or converts with a difference, is listed on
stderr and in ` + gloo.ReportFile + ` with its file and field path
(docs/migrate-gloo.md). Check the result with
  gitxds validate --repo DIR --path overlays/<env>`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--out is required")}
			}
			if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--out %s exists and is not empty", out)}
			}
			inputs, err := gloo.ReadPaths(args)
			if err != nil {
				return ioErr(err)
			}
			res, err := gloo.Convert(inputs, opts)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			paths := make([]string, 0, len(res.Files))
			for p := range res.Files {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				dst := filepath.Join(out, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					return ioErr(err)
				}
				if err := os.WriteFile(dst, res.Files[p], 0o644); err != nil {
					return ioErr(err)
				}
			}
			if err := res.Report.Write(cmd.ErrOrStderr()); err != nil {
				return ioErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "converted %d file(s) into %s: %d not converted, %d converted with a difference, %d note(s) (listed in %s)\ncheck it with: gitxds validate --repo %s --path overlays/%s\n",
				len(inputs), out, res.Report.Count(gloo.NotConverted), res.Report.Count(gloo.Changed), res.Report.Count(gloo.Note),
				filepath.Join(out, gloo.ReportFile), out, overlayName(opts))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write the config repository to (created; must be empty)")
	c.Flags().StringVar(&opts.Overlay, "overlay", "production", "environment of the overlay written, overlays/<env>/")
	c.Flags().StringVar(&opts.Gateway, "gateway", "gateway-proxy", "name of the Gateway written to platform/")
	c.Flags().Int32Var(&opts.HTTPPort, "http-port", 8080, "port of the Gateway's HTTP listener")
	c.Flags().Int32Var(&opts.HTTPSPort, "https-port", 8443, "port of the Gateway's HTTPS listeners")
	return c
}

func overlayName(o gloo.Options) string {
	if o.Overlay == "" {
		return "production"
	}
	return o.Overlay
}
