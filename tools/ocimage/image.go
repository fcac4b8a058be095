package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as: distroless's "nonroot".
const (
	uid      = 65532
	userName = "nonroot"
	binPath  = "usr/local/bin/gitxds"
	certPath = "etc/ssl/certs/ca-certificates.crt"
)

// OCI annotation and label keys.
const (
	labelVersion  = "org.opencontainers.image.version"
	labelRevision = "org.opencontainers.image.revision"
	labelSource   = "org.opencontainers.image.source"
	refName       = "org.opencontainers.image.ref.name"
)

// BuildOptions are the inputs of an image: the same options and files give
// the same digest.
type BuildOptions struct {
	Binary, CACerts           string
	Version, Revision, Source string
	Arch                      string
	Epoch                     int64
}

// file is one entry of the image's layer.
type file struct {
	name string
	mode int64
	data []byte // nil for a directory
}

// rootfs returns the layer's entries: the binary, the CA certificates, and
// /etc/passwd and /etc/group with root and the non-root user.
func rootfs(o BuildOptions) ([]file, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", userName, uid, uid, userName, userName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, uid)
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: certPath, mode: 0o644, data: certs},
		{name: "home/", mode: 0o755},
		{name: "home/" + userName + "/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: binPath, mode: 0o755, data: bin},
	}, nil
}

// layerTar writes the entries as a tar with fixed owners and times.
func layerTar(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.data == nil {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if f.name == "home/"+userName+"/" {
			h.Uid, h.Gid = uid, uid
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// image builds the image.
func image(o BuildOptions) (v1.Image, error) {
	files, err := rootfs(o)
	if err != nil {
		return nil, err
	}
	created := time.Unix(o.Epoch, 0).UTC()
	raw, err := layerTar(files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "ocimage build (gitxds binary, CA certificates, /etc/passwd)"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		Entrypoint: []string{"/" + binPath},
		User:       fmt.Sprintf("%d:%d", uid, uid),
		WorkingDir: "/home/" + userName,
		Env:        []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/" + certPath, "HOME=/home/" + userName},
		Labels:     map[string]string{labelVersion: o.Version, labelRevision: o.Revision, labelSource: o.Source},
	}
	return mutate.ConfigFile(img, cf)
}

// Build writes the image as an OCI layout tarball to out and returns the
// image's digest.
func Build(o BuildOptions, out string) (v1.Hash, error) {
	img, err := image(o)
	if err != nil {
		return v1.Hash{}, err
	}
	return write(img, o, out)
}

// write writes img as an OCI layout tarball.
func write(img v1.Image, o BuildOptions, out string) (v1.Hash, error) {
	dir, err := os.MkdirTemp("", "ocimage-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img,
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.Arch}),
		layout.WithAnnotations(map[string]string{refName: o.Version})); err != nil {
		return v1.Hash{}, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return v1.Hash{}, err
	}
	if err := tarDir(dir, out, time.Unix(o.Epoch, 0).UTC()); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// tarDir writes the files of dir to a tar, sorted, with fixed owners, modes
// and times.
func tarDir(dir, out string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: st.Size()}
		if st.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = rel+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !st.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
