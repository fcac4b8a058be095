package translate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
	"gitxds.dev/gitxds/testenv/golden"
)

const testRevision = "main@sha1:0123456789abcdef0123456789abcdef01234567"

// cases are the inputs testdata/<case>.in.yaml.
func cases(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) == 0 {
		t.Fatal("no test cases in testdata")
	}
	var out []string
	for _, in := range ins {
		out = append(out, strings.TrimSuffix(filepath.Base(in), ".in.yaml"))
	}
	return out
}

func translateCase(t *testing.T, name string) (*snapshot.Set, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := decodeIR(data)
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	set, err := Translate(x, testRevision)
	if err != nil {
		return nil, err
	}
	rl, err := RateLimitServiceConfig(x)
	if err != nil {
		t.Fatal(err)
	}
	if string(rl) != "domain: gitxds\n" {
		rateLimitConfigs[name] = rl
	}
	patched, perrs := ApplyPatches(x, set)
	if len(perrs) > 0 {
		patchErrors[name] = perrs
	}
	return patched, nil
}

// patchErrors holds, per case, the policies ApplyPatches rejected; the
// golden lists them under patch_errors.
var patchErrors = map[string][]error{}

// rateLimitConfigs holds, per case with global rate limits, the rate
// limit service's configuration; the golden shows it under
// rate_limit_service_config.
var rateLimitConfigs = map[string][]byte{}

// TestGolden translates every testdata/<case>.in.yaml and compares the
// result, per class and type in protojson form, or the error, with
// testdata/<case>.out.yaml (golden, rewritten by go test
// ./reconciler/translate -update; an out.yaml without its in.yaml is an
// orphan).
func TestGolden(t *testing.T) {
	var outs []string
	for _, name := range cases(t) {
		out := filepath.Join("testdata", name+".out.yaml")
		outs = append(outs, out)
		t.Run(name, func(t *testing.T) {
			set, err := translateCase(t, name)
			got, merr := render(set, err)
			if rl := rateLimitConfigs[name]; merr == nil && rl != nil {
				var v any
				if err := yaml.Unmarshal(rl, &v); err != nil {
					t.Fatal(err)
				}
				extra, err := yaml.Marshal(map[string]any{"rate_limit_service_config": v})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, extra...)
			}
			if perrs := patchErrors[name]; merr == nil && len(perrs) > 0 {
				var lines []string
				for _, e := range perrs {
					lines = append(lines, strings.Split(e.Error(), "\n")...)
				}
				extra, err := yaml.Marshal(map[string]any{"patch_errors": lines})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, extra...)
			}
			if merr != nil {
				t.Fatal(merr)
			}
			golden.File(t, out, got)
		})
	}
	golden.Orphans(t, "testdata/*.out.yaml", outs)
}

// render is the golden form of a result: the error, or per class and type
// the resources as protojson (proto field names) turned into YAML, and
// under "groups" the same per named proxy group.
func render(set *snapshot.Set, terr error) ([]byte, error) {
	if terr != nil {
		return yaml.Marshal(map[string]any{"error": strings.Split(terr.Error(), "\n")})
	}
	out, err := renderClasses(set)
	if err != nil {
		return nil, err
	}
	if len(set.Groups) > 0 {
		groups := map[string]any{}
		for _, g := range set.GroupNames() {
			if groups[string(g)], err = renderClasses(set.In(g)); err != nil {
				return nil, err
			}
		}
		out["groups"] = groups
	}
	return yaml.Marshal(out)
}

func renderClasses(set *snapshot.Set) (map[string]any, error) {
	out := map[string]any{}
	for _, c := range snapshot.Classes {
		res := set.Classes[c]
		byType := map[string]any{}
		for _, s := range []struct {
			name    string
			typeURL string
		}{
			{"listeners", resource.ListenerType},
			{"routes", resource.RouteType},
			{"clusters", resource.ClusterType},
			{"endpoints", resource.EndpointType},
			{"scoped_routes", resource.ScopedRouteType},
			{"secrets", resource.SecretType},
		} {
			s := struct {
				name  string
				items []types.Resource
			}{s.name, res.ByType(s.typeURL)}
			// The scoped Envoy class shows only what differs from the
			// per-port one.
			if c == snapshot.EnvoyScoped && set.Version(c, resource.ListenerType) != "" &&
				set.Version(c, typeURLOf[s.name]) == set.Version(snapshot.Envoy, typeURLOf[s.name]) {
				if len(s.items) > 0 {
					byType[s.name] = sameAsEnvoy
				}
				continue
			}
			var items []any
			for _, it := range s.items {
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(it)
				if err != nil {
					return nil, err
				}
				var v any
				if err := json.Unmarshal(b, &v); err != nil {
					return nil, err
				}
				items = append(items, v)
			}
			if len(items) > 0 {
				byType[s.name] = items
			}
		}
		out[string(c)] = byType
	}
	return out, nil
}

// sameAsEnvoy stands, in a golden, for resources of the scoped Envoy class
// that are those of the per-port class.
const sameAsEnvoy = "same as envoy"

var typeURLOf = map[string]string{
	"listeners":     resource.ListenerType,
	"routes":        resource.RouteType,
	"clusters":      resource.ClusterType,
	"endpoints":     resource.EndpointType,
	"scoped_routes": resource.ScopedRouteType,
	"secrets":       resource.SecretType,
}

// TestValidateAll checks every resource of every case with ValidateAll, and
// every typed config inside them too (ValidateAll does not look into Any).
func TestValidateAll(t *testing.T) {
	for _, name := range cases(t) {
		set, err := translateCase(t, name)
		if err != nil {
			continue // an error case
		}
		for _, c := range snapshot.Classes {
			for _, typ := range snapshot.TypeURLs {
				for _, r := range set.Classes[c].ByType(typ) {
					if err := xdsres.Validate(r); err != nil {
						t.Errorf("%s %s %s: %v", name, c, typ, err)
					}
				}
			}
		}
	}
}

// TestDeterministic translates every case twice, from two decodes of the
// input, and expects the same content hash and bytes.
func TestDeterministic(t *testing.T) {
	for _, name := range cases(t) {
		a, errA := translateCase(t, name)
		b, errB := translateCase(t, name)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%s: errors differ: %v / %v", name, errA, errB)
		}
		if errA != nil {
			if errA.Error() != errB.Error() {
				t.Errorf("%s: errors differ:\n%v\n%v", name, errA, errB)
			}
			continue
		}
		if a.Hash() != b.Hash() {
			t.Errorf("%s: hash %s != %s", name, a.Hash(), b.Hash())
		}
		for _, c := range snapshot.Classes {
			for _, typ := range snapshot.TypeURLs {
				if a.Version(c, typ) != b.Version(c, typ) {
					t.Errorf("%s %s %s: version differs", name, c, typ)
				}
			}
		}
	}
}
