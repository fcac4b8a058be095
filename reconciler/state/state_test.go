package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

func testSet(rev string) *snapshot.Set {
	return snapshot.New(rev, map[snapshot.Class]*snapshot.Resources{
		snapshot.Envoy: {Clusters: []*clusterv3.Cluster{{Name: "c", ConnectTimeout: durationpb.New(time.Second)}}},
		snapshot.GRPC:  {Clusters: []*clusterv3.Cluster{{Name: "g"}}},
	})
}

func TestLastGoodRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadLastGood(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadLastGood on empty dir: %v, want ErrNotFound", err)
	}
	set := testSet("main@sha1:aaaa")
	if err := s.SaveLastGood(set); err != nil {
		t.Fatal(err)
	}
	out, err := s.LoadLastGood()
	if err != nil {
		t.Fatal(err)
	}
	if out.Hash() != set.Hash() || out.Revision != set.Revision {
		t.Fatalf("set %s/%s, want %s/%s", out.Hash(), out.Revision, set.Hash(), set.Revision)
	}
	// Overwrite: the newest wins, no temp file left behind.
	if err := s.SaveLastGood(testSet("main@sha1:bbbb")); err != nil {
		t.Fatal(err)
	}
	if out, err = s.LoadLastGood(); err != nil || out.Revision != "main@sha1:bbbb" {
		t.Fatalf("after overwrite: %v %v", out, err)
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		if e.Name() != LastGood.File() {
			t.Errorf("unexpected file %s", e.Name())
		}
	}
}

type rolloutState struct {
	Stage  string   `json:"stage"`
	Failed []string `json:"failed"`
}

func TestSaveLoad(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got rolloutState
	if err := s.Load("rollout", &got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load missing: %v", err)
	}
	want := rolloutState{Stage: "canary", Failed: []string{"main@sha1:cccc"}}
	if err := s.Save("rollout", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Load("rollout", &got); err != nil {
		t.Fatal(err)
	}
	if got.Stage != want.Stage || len(got.Failed) != 1 || got.Failed[0] != want.Failed[0] {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if err := s.Save(Document(bad), want); err == nil {
			t.Errorf("Save(%q) accepted", bad)
		}
	}
	if err := s.Delete("rollout"); err != nil {
		t.Fatal(err)
	}
	if err := s.Load("rollout", &got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// A crash between CreateTemp and rename leaves a temp file: it is ignored by
// Load, and removed by the next Open.
func TestStrayTempFileIgnored(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save("rollout", rolloutState{Stage: "half"}); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, tmpPrefix+"rollout.json-123")
	if err := os.WriteFile(stray, []byte(`{"stage":"torn`), 0o600); err != nil {
		t.Fatal(err)
	}
	var got rolloutState
	if err := s.Load("rollout", &got); err != nil || got.Stage != "half" {
		t.Fatalf("Load with stray temp file: %+v %v", got, err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray temp file not removed by Open: %v", err)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"empty":     "",
		"truncated": `{"stage":"can`,
		"trailing":  `{"stage":"canary"} {}`,
		"wrongtype": `{"stage":42}`,
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var got rolloutState
		err := s.Load(Document(name), &got)
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want a corrupt-file error naming %s", name, err, path)
		}
	}
	lg := filepath.Join(dir, LastGood.File())
	for _, content := range []string{`{"revision":"r"}`, `{"format":"nope"}`, `garbage`} {
		if err := os.WriteFile(lg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.LoadLastGood()
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), lg) {
			t.Errorf("LoadLastGood(%s): err = %v, want an error naming %s", content, err, lg)
		}
	}
}
