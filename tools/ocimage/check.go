package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// CheckOptions are what the image must carry.
type CheckOptions struct {
	Version, Revision string
	// Run runs the image's binary with `version` when it is built for this
	// machine, and checks that it prints Version.
	Run bool
}

// Check opens an OCI layout tarball and checks its one image: it holds the
// binary, CA certificates and a passwd entry for the user it runs as, that
// user is not root, and it carries the OCI labels with the version and
// revision. It returns a short report.
func Check(archive string, want CheckOptions) (string, error) {
	dir, err := os.MkdirTemp("", "ocimage-check-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := untar(archive, dir); err != nil {
		return "", err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	if len(im.Manifests) != 1 {
		return "", fmt.Errorf("the layout holds %d manifests, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return "", err
	}
	digest, _ := img.Digest()
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	user, _, _ := strings.Cut(cf.Config.User, ":")
	if user == "" || user == "0" || user == "root" {
		fail("runs as root (User %q)", cf.Config.User)
	}
	for k, v := range map[string]string{labelVersion: want.Version, labelRevision: want.Revision} {
		if got := cf.Config.Labels[k]; got == "" || (v != "" && got != v) {
			fail("label %s = %q, want %q", k, got, v)
		}
	}
	if cf.Config.Labels[labelSource] == "" {
		fail("no label %s", labelSource)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/"+binPath {
		fail("entrypoint %v, want [/%s]", cf.Config.Entrypoint, binPath)
	}

	files, err := filesOf(img)
	if err != nil {
		return "", err
	}
	bin, ok := files[binPath]
	if !ok {
		fail("no /%s", binPath)
	} else if bin.mode&0o111 == 0 {
		fail("/%s is not executable", binPath)
	}
	if len(files[certPath].data) == 0 {
		fail("no CA certificates at /%s", certPath)
	}
	if !passwdHas(files["etc/passwd"].data, user) {
		fail("/etc/passwd has no entry for user %s", user)
	}
	var ran string
	if want.Run && bin.data != nil {
		if cf.OS == runtime.GOOS && cf.Architecture == runtime.GOARCH {
			out, err := runBinary(bin.data)
			if err != nil {
				fail("running the image's binary: %v", err)
			} else if want.Version != "" && !strings.Contains(out, want.Version) {
				fail("the image's binary prints %q, want the version %q", out, want.Version)
			}
			ran = out
		} else {
			ran = fmt.Sprintf("(not run: %s/%s image on %s/%s)", cf.OS, cf.Architecture, runtime.GOOS, runtime.GOARCH)
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return fmt.Sprintf("%s: %s %s/%s, user %s, version %s, revision %s\ngitxds version: %s\n",
		archive, digest, cf.OS, cf.Architecture, cf.Config.User, cf.Config.Labels[labelVersion], cf.Config.Labels[labelRevision], ran), nil
}

type entry struct {
	mode int64
	data []byte
}

// filesOf returns the image's flattened file system (regular files).
func filesOf(img v1.Image) (map[string]entry, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(h.Name, "/")] = entry{mode: h.Mode, data: data}
	}
}

func passwdHas(passwd []byte, user string) bool {
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && (f[0] == user || f[2] == user) {
			return true
		}
	}
	return false
}

// runBinary runs the image's binary with `version`.
func runBinary(bin []byte) (string, error) {
	dir, err := os.MkdirTemp("", "ocimage-run-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "gitxds")
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.Command(p, "version")
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// untar extracts an OCI layout tarball (regular files and directories).
func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%s: entry %q leaves the archive", archive, h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
		}
	}
}
