package credentials

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"gitxds.dev/gitxds/reconciler/source"
)

func pgpEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ArmoredPublicKey is e's public key, armored (a keyring file).
func armoredPublicKey(t *testing.T, es ...*openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := e.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return buf.String()
}

// SignedRepo is a local repository whose commits the test signs (or not).
type signedRepo struct {
	dir  string
	repo *git.Repository
	n    int
}

func newSignedRepo(t *testing.T) *signedRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &signedRepo{dir: dir, repo: r}
}

func (s *signedRepo) commit(t *testing.T, key *openpgp.Entity) string {
	t.Helper()
	s.n++
	if err := os.WriteFile(filepath.Join(s.dir, "file.txt"), []byte(strings.Repeat("x", s.n)), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := s.repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("file.txt"); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("change", &git.CommitOptions{SignKey: key,
		Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000+int64(s.n), 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestPGPVerifier(t *testing.T) {
	trusted := pgpEntity(t, "release")
	stranger := pgpEntity(t, "stranger")
	ring := write(t, t.TempDir(), "keyring.asc", armoredPublicKey(t, trusted))
	verify, err := PGPVerifier(ring)
	if err != nil {
		t.Fatal(err)
	}
	r := newSignedRepo(t)
	src, err := source.New(source.Options{URL: r.dir, Ref: "master", VerifyCommit: verify})
	if err != nil {
		t.Fatal(err)
	}
	fsOf := func() error {
		t.Helper()
		rev, _, err := src.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.FS(context.Background(), rev)
		return err
	}

	r.commit(t, trusted)
	if err := fsOf(); err != nil {
		t.Fatalf("commit signed by a trusted key refused: %v", err)
	}
	r.commit(t, nil)
	if err := fsOf(); !errors.Is(err, source.ErrUnverified) || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned commit: %v", err)
	}
	r.commit(t, stranger)
	if err := fsOf(); !errors.Is(err, source.ErrUnverified) || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("commit signed by an untrusted key: %v", err)
	}
	r.commit(t, trusted)
	if err := fsOf(); err != nil {
		t.Fatalf("trusted again: %v", err)
	}
}

func TestPGPVerifierSSHSignature(t *testing.T) {
	verify, err := PGPVerifier(write(t, t.TempDir(), "k.asc", armoredPublicKey(t, pgpEntity(t, "a"))))
	if err != nil {
		t.Fatal(err)
	}
	c := &object.Commit{PGPSignature: "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"}
	if err := verify(c); err == nil || !strings.Contains(err.Error(), "SSH signature") {
		t.Fatalf("SSH signature: %v", err)
	}
}

func TestPGPVerifierBadKeyring(t *testing.T) {
	dir := t.TempDir()
	if _, err := PGPVerifier(write(t, dir, "garbage.asc", "not a key")); err == nil {
		t.Fatal("garbage keyring accepted")
	}
	if _, err := PGPVerifier(filepath.Join(dir, "missing.asc")); err == nil {
		t.Fatal("missing keyring accepted")
	}
}
