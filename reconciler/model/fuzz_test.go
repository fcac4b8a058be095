package model

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzInput turns a fuzzed YAML stream into model input: each document may
// name its source file with a "# file:" line, like the golden cases;
// otherwise its file is its namespace's team directory (platform/ when it
// has none).
func fuzzInput(t *testing.T, data []byte) Input {
	var in Input
	for _, doc := range splitDocs(string(data)) {
		file := ""
		for _, line := range strings.Split(doc, "\n") {
			if v, ok := strings.CutPrefix(line, "# file: "); ok {
				file = strings.TrimSpace(v)
			}
		}
		o := objectOf(t, []byte(doc), file)
		if o.File == "" {
			o.File = "platform/objects.yaml"
			if o.Namespace != "" && o.Namespace != PlatformNamespace {
				o.File = "teams/" + o.Namespace + "/objects.yaml"
			}
		}
		in.Objects = append(in.Objects, o)
	}
	return in
}

// seedCases adds every golden case's input as a seed.
func seedCases(f *testing.F, dir string) {
	ins, _ := filepath.Glob(filepath.Join(dir, "*.in.yaml"))
	for _, p := range ins {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzModel: decoding and building never panic, the IR always validates
// (a model that built an invalid IR would fail the whole revision, every
// team's changes with it), and the build is deterministic: the same input
// gives the same status and IR, with or without a warm decode cache.
func FuzzModel(f *testing.F) {
	seedCases(f, "testdata")
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(t, data)
		dc := &DecodeCache{}
		in.Decoded = dc
		a := Build(in)
		if err := a.IR.Validate(); err != nil {
			t.Fatalf("the model built an invalid IR: %v", err)
		}
		in.Decoded = nil
		b := Build(in)
		in.Decoded = dc
		c := Build(in)
		ga, gb, gc := goldenOutput(t, a, true), goldenOutput(t, b, true), goldenOutput(t, c, true)
		if !bytes.Equal(ga, gb) || !bytes.Equal(ga, gc) {
			t.Fatalf("not deterministic:\n%s\n---\n%s\n---\n%s", ga, gb, gc)
		}
	})
}
