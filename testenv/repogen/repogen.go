// Package repogen generates a config repository laid out as docs/architecture.md §1 says:
// platform/ (Namespaces, one Gateway, a RolloutPolicy), teams/<team>/ with
// R HTTPRoutes and B Backends each, and overlays/<env>/ over all of them. It
// is the input of the render benchmarks and of the fleet harness
// (testenv/scale).
//
// The output is deterministic: the same Spec gives the same bytes.
package repogen

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Spec of a generated repository.
type Spec struct {
	// Teams is the number of teams (directories under teams/).
	Teams int
	// Routes is the number of HTTPRoutes per team; each route has one rule
	// matching the path prefix /r<i> on the team's hostname.
	Routes int
	// Backends per team; 5 when zero. Route i uses backend i mod Backends.
	Backends int
	// Overlays are the environments under overlays/; ["dev"] when empty.
	Overlays []string
	// Domain of the hostnames: team t serves <team>.<Domain>;
	// "example.com" when empty.
	Domain string
	// Port of the Gateway listener; 8080 when zero.
	Port int
	// Endpoint gives backend b of team t its address; 10.<t/250>.<t%250>.<b+1>:8080
	// when nil.
	Endpoint func(team, backend int) (ip string, port int)
	// CatchAll makes route 0 of every team match the path prefix "/" (so
	// any request to the team's hostname, e.g. a gRPC call, has a route).
	CatchAll bool
}

func (s Spec) withDefaults() Spec {
	if s.Backends <= 0 {
		s.Backends = 5
	}
	if len(s.Overlays) == 0 {
		s.Overlays = []string{"dev"}
	}
	if s.Domain == "" {
		s.Domain = "example.com"
	}
	if s.Port == 0 {
		s.Port = 8080
	}
	if s.Endpoint == nil {
		s.Endpoint = func(t, b int) (string, int) {
			return fmt.Sprintf("10.%d.%d.%d", t/250, t%250, b+1), 8080
		}
	}
	return s
}

// TeamName is the name (and namespace) of team t: "team-0007".
func TeamName(t int) string { return fmt.Sprintf("team-%04d", t) }

// RouteName is the name of route r of a team: "r-007".
func RouteName(r int) string { return fmt.Sprintf("r-%03d", r) }

// BackendName is the name of backend b of a team: "b-2".
func BackendName(b int) string { return fmt.Sprintf("b-%d", b) }

// Hostname of team t.
func (s Spec) Hostname(t int) string {
	s = s.withDefaults()
	return TeamName(t) + "." + s.Domain
}

// BackendOf is the backend route r uses at generation g.
func (s Spec) BackendOf(r, g int) int {
	s = s.withDefaults()
	return (r + g) % s.Backends
}

// Files is a repository: slash-separated path relative to the root -> content.
type Files map[string][]byte

// Generate returns the repository of spec.
func Generate(spec Spec) Files {
	s := spec.withDefaults()
	f := Files{}
	f["platform/kustomization.yaml"] = []byte(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- namespaces.yaml
- gateways.yaml
- rollout.yaml
`)
	var ns strings.Builder
	for t := 0; t < s.Teams; t++ {
		if t > 0 {
			ns.WriteString("---\n")
		}
		fmt.Fprintf(&ns, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    gateway-access: public\n", TeamName(t))
	}
	f["platform/namespaces.yaml"] = []byte(ns.String())
	f["platform/gateways.yaml"] = []byte(fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: platform
spec:
  gatewayClassName: gitxds
  listeners:
  - name: public
    port: %d
    protocol: HTTP
    hostname: "*.%s"
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels:
            gateway-access: public
`, s.Port, s.Domain))
	f["platform/rollout.yaml"] = []byte(`apiVersion: gitxds.dev/v1alpha1
kind: RolloutPolicy
metadata:
  name: default
spec:
  ackTimeout: 10s
  stages:
  - name: all
    percent: 100
`)
	for t := 0; t < s.Teams; t++ {
		maps.Copy(f, s.team(t, 0))
	}
	for _, env := range s.Overlays {
		var k strings.Builder
		k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../platform\n")
		for t := 0; t < s.Teams; t++ {
			fmt.Fprintf(&k, "- ../../teams/%s\n", TeamName(t))
		}
		f["overlays/"+env+"/kustomization.yaml"] = []byte(k.String())
	}
	return f
}

// team returns the files of team t at generation g of its routes.
func (s Spec) team(t, g int) Files {
	name := TeamName(t)
	dir := "teams/" + name + "/"
	f := Files{}
	f[dir+"kustomization.yaml"] = []byte(fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
- routes.yaml
- backends.yaml
`, name))
	var b strings.Builder
	for i := 0; i < s.Backends; i++ {
		if i > 0 {
			b.WriteString("---\n")
		}
		ip, port := s.Endpoint(t, i)
		fmt.Fprintf(&b, "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata:\n  name: %s\nspec:\n  endpoints:\n  - ip: {address: %s, port: %d}\n", BackendName(i), ip, port)
	}
	f[dir+"backends.yaml"] = []byte(b.String())
	var r strings.Builder
	for i := 0; i < s.Routes; i++ {
		if i > 0 {
			r.WriteString("---\n")
		}
		r.WriteString(s.route(t, i, g))
	}
	f[dir+"routes.yaml"] = []byte(r.String())
	return f
}

// route is route i of team t at generation g: generation g > 0 moves the
// route to backend (i+g) mod Backends and its path prefix to /r<i>-g<g>
// (the catch-all route keeps "/").
func (s Spec) route(t, i, g int) string {
	prefix := RoutePrefix(i, g)
	if s.CatchAll && i == 0 {
		prefix = "/"
	}
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %s
spec:
  parentRefs:
  - name: edge
    namespace: platform
    sectionName: public
  hostnames:
  - %s
  rules:
  - matches:
    - path: {type: PathPrefix, value: %s}
    backendRefs:
    - {group: gitxds.dev, kind: Backend, name: %s}
`, RouteName(i), s.Hostname(t), prefix, BackendName((i+g)%s.Backends))
}

// ChangeRoute returns the files that change route r of team t to generation
// g (g > 0; generation 0 is what Generate writes): its path prefix becomes
// /r<r>-g<g> (unless it is the catch-all) and its backend b-<(r+g) mod
// Backends>. Only teams/<team>/routes.yaml changes.
func ChangeRoute(spec Spec, t, r, g int) Files {
	s := spec.withDefaults()
	var b strings.Builder
	for i := 0; i < s.Routes; i++ {
		if i > 0 {
			b.WriteString("---\n")
		}
		gen := 0
		if i == r {
			gen = g
		}
		b.WriteString(s.route(t, i, gen))
	}
	return Files{"teams/" + TeamName(t) + "/routes.yaml": []byte(b.String())}
}

// RoutePrefix is the path prefix of route r at generation g (0: as
// generated).
func RoutePrefix(r, g int) string {
	if g > 0 {
		return fmt.Sprintf("/r%d-g%d", r, g)
	}
	return fmt.Sprintf("/r%d", r)
}

// Paths are the file paths, sorted.
func (f Files) Paths() []string { return slices.Sorted(maps.Keys(f)) }

// FS writes the files into a new in-memory file system whose root "/" is
// the repository root (what render.Render takes).
func (f Files) FS() (filesys.FileSystem, error) {
	fsys := filesys.MakeFsInMemory()
	return fsys, f.WriteFS(fsys)
}

// WriteFS writes (or overwrites) the files into fsys under "/".
func (f Files) WriteFS(fsys filesys.FileSystem) error {
	for _, p := range f.Paths() {
		if err := fsys.WriteFile(path.Join("/", p), f[p]); err != nil {
			return err
		}
	}
	return nil
}

// WriteDir writes the files below dir on disk.
func (f Files) WriteDir(dir string) error {
	for _, p := range f.Paths() {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f[p], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Strings is the files as strings (what testenv/gitserver's WriteFiles takes).
func (f Files) Strings() map[string]string {
	out := make(map[string]string, len(f))
	for p, b := range f {
		out[p] = string(b)
	}
	return out
}

// Objects is the number of objects of the repository: a Namespace per team,
// the Gateway, the RolloutPolicy, and each team's routes and backends.
func (s Spec) Objects() int {
	s = s.withDefaults()
	return s.Teams*(1+s.Routes+s.Backends) + 2
}
