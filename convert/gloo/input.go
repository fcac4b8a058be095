package gloo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Gloo Edge's API groups and kinds read by the converter.
const (
	groupGateway = "gateway.solo.io"
	groupGloo    = "gloo.solo.io"

	kindVirtualService = "VirtualService"
	kindRouteTable     = "RouteTable"
	kindUpstream       = "Upstream"
	kindUpstreamGroup  = "UpstreamGroup"
)

// object is one input object.
type object struct {
	file      string
	kind      string
	name      string
	namespace string
	labels    map[string]string
	spec      *node
}

func (o *object) key() string { return o.namespace + "/" + o.name }

// Input is a named YAML file.
type Input struct {
	Name string // shown in the report, e.g. the path given on the command line
	Data []byte
}

// ReadPaths reads the files and the .yaml/.yml files below the directories
// given, in lexical order.
func ReadPaths(paths []string) ([]Input, error) {
	var out []Input
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, Input{Name: filepath.ToSlash(p), Data: data})
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(f); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, f)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, Input{Name: filepath.ToSlash(f), Data: data})
		}
	}
	return out, nil
}

// parse splits the inputs into objects. Kinds the converter does not read
// are reported; a `kind: List` (kubectl get -o yaml) is unpacked.
func parse(inputs []Input, r *Report) ([]*object, error) {
	var objs []*object
	for _, in := range inputs {
		rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(in.Data)))
		for i := 0; ; i++ {
			doc, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", in.Name, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", in.Name, i+1, err)
			}
			if m == nil {
				continue
			}
			objs = append(objs, toObjects(in.Name, fmt.Sprintf("document %d", i+1), m, r)...)
		}
	}
	return objs, nil
}

func toObjects(file, where string, m map[string]any, r *Report) []*object {
	kind, _ := m["kind"].(string)
	apiVersion, _ := m["apiVersion"].(string)
	if kind == "List" {
		var out []*object
		items, _ := m["items"].([]any)
		for i, it := range items {
			if im, ok := it.(map[string]any); ok {
				out = append(out, toObjects(file, fmt.Sprintf("%s items[%d]", where, i), im, r)...)
			}
		}
		return out
	}
	group, _, _ := strings.Cut(apiVersion, "/")
	known := (group == groupGateway && (kind == kindVirtualService || kind == kindRouteTable)) ||
		(group == groupGloo && (kind == kindUpstream || kind == kindUpstreamGroup))
	md, _ := m["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	if !known {
		r.notConverted(file, where, "%s %s (%s) is not a kind gitxds convert gloo reads (VirtualService, RouteTable, Upstream, UpstreamGroup)", kind, name, apiVersion)
		return nil
	}
	if name == "" {
		r.notConverted(file, where+" metadata.name", "%s has no name", kind)
		return nil
	}
	if ns == "" {
		ns = DefaultNamespace
		r.note(file, fmt.Sprintf("%s %s metadata.namespace", kind, name), "no namespace: taken as %q", ns)
	}
	o := &object{file: file, kind: kind, name: name, namespace: ns}
	if l, ok := md["labels"].(map[string]any); ok {
		o.labels = map[string]string{}
		for k, v := range l {
			o.labels[k] = fmt.Sprint(v)
		}
	}
	spec, _ := m["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	o.spec = newNode(r, file, fmt.Sprintf("%s %s/%s spec", kind, ns, name), spec)
	return []*object{o}
}

// DefaultNamespace is the namespace of an input object that names none.
const DefaultNamespace = "default"
