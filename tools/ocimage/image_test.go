package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// buildGitxds builds the static gitxds binary as the image task does.
func buildGitxds(t *testing.T, version, revision string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gitxds")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version+" -X main.revision="+revision,
		"-o", out, "./cmd/gitxds")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func caCerts(t *testing.T) string {
	const system = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(system); err == nil {
		return system
	}
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImage: the image of the real binary holds it, runs as non-root,
// carries the labels, and its binary prints the version; the same inputs
// give the same digest and the same archive bytes; another version gives
// another digest; a check for another version fails.
func TestImage(t *testing.T) {
	const version, revision = "v0.0.0-imagetest", "0123456789abcdef0123456789abcdef01234567"
	bin := buildGitxds(t, version, revision)
	o := BuildOptions{Binary: bin, CACerts: caCerts(t), Version: version, Revision: revision, Source: "https://gitxds.dev/gitxds", Arch: runtime.GOARCH, Epoch: 1700000000}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	da, err := Build(o, a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Build(o, b)
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Errorf("same inputs, digests %s and %s", da, db)
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if string(ba) != string(bb) {
		t.Error("same inputs, different archive bytes")
	}
	o2 := o
	o2.Version = "v0.0.1-imagetest"
	if d2, err := Build(o2, filepath.Join(dir, "c.tar")); err != nil || d2 == da {
		t.Errorf("another version: digest %s (err %v), want one different from %s", d2, err, da)
	}

	rep, err := Check(a, CheckOptions{Version: version, Revision: revision, Run: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if runtime.GOOS == "linux" && !strings.Contains(rep, "gitxds "+version+" (revision "+revision) {
		t.Errorf("the image's binary did not print its version and revision:\n%s", rep)
	}
	if _, err := Check(a, CheckOptions{Version: "v9.9.9", Revision: revision, Run: true}); err == nil || !strings.Contains(err.Error(), "v9.9.9") {
		t.Errorf("check for another version: %v, want a failure naming it", err)
	}
}

// TestRootImageRefused: the check fails on an image that runs as root or
// has no labels.
func TestRootImageRefused(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gitxds")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := BuildOptions{Binary: bin, CACerts: caCerts(t), Version: "v1", Revision: "r", Source: "s", Arch: "amd64"}
	img, err := image(o)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.User = "0"
	cfg.Labels = nil
	root, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "root.tar")
	if _, err := write(root, o, out); err != nil {
		t.Fatal(err)
	}
	_, err = Check(out, CheckOptions{Version: "v1", Revision: "r"})
	if err == nil || !strings.Contains(err.Error(), "runs as root") || !strings.Contains(err.Error(), labelVersion) {
		t.Errorf("check of a root image without labels: %v", err)
	}
}
