package render

import (
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/fn/runtime/runtimeutil"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

const helmGenerator = "HelmChartInflationGenerator"

// builtinPlugin reports whether kind is one of kustomize's builtin generators
// or transformers, which run in process (helm's is refused: it runs helm).
func builtinPlugin(kind string) bool {
	if kind == helmGenerator {
		return false
	}
	for _, n := range krusty.GetBuiltinPluginNames() {
		if n == kind {
			return true
		}
	}
	return false
}

// functionAnnotations mark a KRM function (container or exec) plugin.
var functionAnnotations = []string{runtimeutil.FunctionAnnotationKey, "config.k8s.io/function"}

// pluginConfig is the part of a generator, transformer or validator config
// that decides what runs and which files it reads.
type pluginConfig struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	// Files of the builtins: PatchTransformer, PatchJson6902Transformer
	// (path), PatchStrategicMergeTransformer (paths), ReplacementTransformer
	// (replacements[].path), ConfigMapGenerator and SecretGenerator (files,
	// envs, env), ValueAddTransformer (targetFilePath).
	Path           string   `yaml:"path"`
	Paths          []string `yaml:"paths"`
	Files          []string `yaml:"files"`
	Envs           []string `yaml:"envs"`
	Env            string   `yaml:"env"`
	TargetFilePath string   `yaml:"targetFilePath"`
	Replacements   []struct {
		Path string `yaml:"path"`
	} `yaml:"replacements"`
}

// pluginConfig checks one generator, transformer or validator config found in
// file: only in-process builtins pass, and the files they read are confined
// like any other (relative to root, the directory of the kustomization that
// lists the config).
func (w *walker) pluginConfig(root, file string, n *kyaml.Node) error {
	var c pluginConfig
	if err := n.Decode(&c); err != nil {
		return refuse(file, ErrMalformed, "plugin config at line %d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	id := c.Kind
	if c.Metadata.Name != "" {
		id += " " + c.Metadata.Name
	}
	for _, a := range functionAnnotations {
		if _, ok := c.Metadata.Annotations[a]; ok {
			return refuse(file, ErrPlugin, "%s is a KRM function plugin (annotation %s); container and exec functions are not allowed", id, a)
		}
	}
	switch {
	case c.Kind == helmGenerator:
		return refuse(file, ErrPlugin, "%s: helm charts are not allowed (kustomize would run helm)", id)
	case c.APIVersion != "builtin":
		return refuse(file, ErrPlugin, "%s (apiVersion %q) is not a kustomize builtin; exec and Go plugins are not allowed", id, c.APIVersion)
	case !builtinPlugin(c.Kind):
		return refuse(file, ErrPlugin, "%s is not a kustomize builtin generator or transformer", id)
	}
	field := c.Kind + " "
	var refs []string
	for _, p := range []string{c.Path, c.Env, c.TargetFilePath} {
		if p != "" {
			refs = append(refs, p)
		}
	}
	for _, r := range c.Replacements {
		if r.Path != "" {
			refs = append(refs, r.Path)
		}
	}
	refs = append(refs, c.Envs...)
	for _, f := range c.Files {
		if k, v, ok := strings.Cut(f, "="); ok && k != "" {
			f = v
		}
		refs = append(refs, f)
	}
	for _, p := range c.Paths {
		if isInline(p) {
			if _, err := w.lim.parseYAML(file, []byte(p)); err != nil {
				return err
			}
			continue
		}
		refs = append(refs, p)
	}
	for _, r := range refs {
		if _, err := w.yamlOrDataFile(root, file, field+"file", r, c.Kind); err != nil {
			return err
		}
	}
	return nil
}

// yamlOrDataFile confines a file a builtin plugin reads; generator sources are
// data, everything else is parsed as YAML.
func (w *walker) yamlOrDataFile(root, file, field, ref, kind string) (string, error) {
	if kind == "ConfigMapGenerator" || kind == "SecretGenerator" {
		return w.file(root, file, field, ref)
	}
	if _, err := w.yamlFile(root, file, field, ref, true); err != nil {
		return "", err
	}
	return ref, nil
}
