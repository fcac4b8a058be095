// Command scale runs gitxds's scale harness (testenv/scale) and prints the
// result as JSON:
//
//	go run ./testenv/cmd/scale -teams 200 -routes 25 -nodes 1000 -o json
//
// Each control plane (gitxds, and the plain go-control-plane baseline) runs
// in a child process of this command (-serve), so that its peak memory is
// its own.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"gitxds.dev/gitxds/testenv/repogen"
	"gitxds.dev/gitxds/testenv/scale"
)

func main() {
	var (
		teams    = flag.Int("teams", 200, "teams in the generated repository")
		routes   = flag.Int("routes", 25, "HTTPRoutes per team (each team also has 5 Backends)")
		nodes    = flag.Int("nodes", 1000, "simulated Envoy nodes (ADS streams) per control plane")
		changes  = flag.Int("changes", 20, "one-route changes pushed while the gRPC clients send traffic")
		clients  = flag.Int("grpc-clients", 3, "real gRPC-Go xDS clients sending traffic")
		output   = flag.String("o", "json", "output: json")
		kubectl  = flag.Bool("kubectl", true, "time kubectl kustomize on the same repository (when on PATH)")
		whole    = flag.Bool("whole-render", true, "time the baseline's render: kustomize in process on the whole overlay (~1 min at 200 teams)")
		baseline = flag.Bool("baseline", true, "run the plain go-control-plane SnapshotCache baseline")
		delta    = flag.Bool("delta", true, "also run gitxds with delta ADS nodes")
		inproc   = flag.Bool("in-process", false, "run the control planes in this process (peak RSS is then the whole process's)")
		timeout  = flag.Duration("timeout", 5*time.Minute, "timeout of each wait for the fleet")
		quiet    = flag.Bool("q", false, "no progress on stderr")

		serve     = flag.String("serve", "", "internal: run a control plane (gitxds or baseline) for the harness on stdin/stdout")
		catchAll  = flag.Bool("catch-all", false, "internal (-serve): route 0 of every team matches /")
		upstreams = flag.String("upstreams", "", "internal (-serve): comma-separated upstream addresses of the backends")
		cpuprof   = flag.String("cpuprofile", "", "internal (-serve): write the control plane's CPU profile to this file")
		profDir   = flag.String("profile-dir", "", "write each control plane's CPU profile to DIR/<plane>.pprof")
		memLimit  = flag.String("memory-limit", "", "GOMEMLIMIT of the child control planes (e.g. 900MiB); Go's default when empty")
	)
	flag.Parse()
	if *serve != "" {
		spec := repogen.Spec{Teams: *teams, Routes: *routes, CatchAll: *catchAll}
		if *upstreams != "" {
			spec.Endpoint = scale.EndpointsFromAddrs(strings.Split(*upstreams, ","))
		}
		if *cpuprof != "" {
			f, err := os.Create(*cpuprof)
			if err != nil {
				fmt.Fprintln(os.Stderr, "scale -serve:", err)
				os.Exit(1)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "scale -serve:", err)
				os.Exit(1)
			}
			defer pprof.StopCPUProfile()
		}
		if err := scale.Serve(*serve, spec, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "scale -serve:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		return
	}
	if *output != "json" {
		fmt.Fprintln(os.Stderr, "scale: -o must be json")
		os.Exit(2)
	}
	cfg := scale.Config{
		Teams: *teams, Routes: *routes, Nodes: *nodes, Changes: *changes, GRPCClients: *clients,
		Kubectl: *kubectl, WholeRender: *whole, Baseline: *baseline, Delta: *delta, Timeout: *timeout,
		Log: os.Stderr, ProfileDir: *profDir, MemoryLimit: *memLimit,
	}
	if *quiet {
		cfg.Log = io.Discard
	}
	if !*inproc {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(2)
		}
		cfg.ServerArgv = []string{exe}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := scale.Run(ctx, cfg)
	if res != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}
