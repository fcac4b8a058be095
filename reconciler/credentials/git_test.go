package credentials

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/testenv/gitserver"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sshFixture: a bare repository with one commit behind an SSH server, and
// the client's key on disk.
type sshFixture struct {
	srv     *sshGitServer
	keyFile string
	url     string
	sha     string
	dir     string
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	gs, err := gitserver.Start("", gitserver.Options{})
	if err != nil {
		t.Skip("git CLI needed:", err)
	}
	t.Cleanup(gs.Close)
	repo, err := gs.CreateRepo("gateways")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.WriteFiles(map[string]string{"README": "hello\n"}); err != nil {
		t.Fatal(err)
	}
	sha, err := repo.Commit("first")
	if err != nil {
		t.Fatal(err)
	}
	client, pemKey := newKey(t)
	dir := t.TempDir()
	f := &sshFixture{dir: dir, sha: sha, keyFile: write(t, dir, "id_ed25519", string(pemKey))}
	f.srv = startSSHGitServer(t, repo.BareDir(), client.PublicKey())
	f.url = "ssh://git@" + f.srv.addr + "/gateways.git"
	return f
}

func (f *sshFixture) poll(t *testing.T, o GitOptions, log *slog.Logger) (source.Revision, error) {
	t.Helper()
	auth, err := GitAuth(f.url, o, log)
	if err != nil {
		t.Fatalf("GitAuth: %v", err)
	}
	src, err := source.New(source.Options{URL: f.url, Ref: "main", Auth: auth, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rev, _, err := src.Poll(context.Background())
	return rev, err
}

func TestSSHKnownHostsRefusesUnknownHost(t *testing.T) {
	f := newSSHFixture(t)
	// known_hosts holds another host only.
	other, _ := newKey(t)
	kh := write(t, f.dir, "known_hosts", knownhosts.Line([]string{"[git.example.com]:22"}, other.PublicKey())+"\n")
	_, err := f.poll(t, GitOptions{SSHKeyFile: f.keyFile, SSHKnownHostsFile: kh}, nil)
	if err == nil {
		t.Fatal("poll of an unknown host succeeded")
	}
	if !errors.Is(err, source.ErrAuth) && !errors.Is(err, source.ErrUnreachable) {
		t.Errorf("error kind: %v", err)
	}
	if !strings.Contains(err.Error(), "key is unknown") {
		t.Errorf("error does not say the host key is unknown: %v", err)
	}
	if n := f.srv.authSeen.Load(); n != 0 {
		t.Errorf("the client offered its key %d times to an unverified server", n)
	}
	if f.srv.execs.Load() != 0 {
		t.Error("upload-pack ran")
	}
}

func TestSSHKnownHostsRefusesChangedKey(t *testing.T) {
	f := newSSHFixture(t)
	impostor, _ := newKey(t)
	kh := write(t, f.dir, "known_hosts", knownhosts.Line([]string{f.srv.addr}, impostor.PublicKey())+"\n")
	_, err := f.poll(t, GitOptions{SSHKeyFile: f.keyFile, SSHKnownHostsFile: kh}, nil)
	if err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("want a key mismatch refusal, got %v", err)
	}
	if f.srv.authSeen.Load() != 0 {
		t.Error("the client authenticated to a server with a changed key")
	}
}

func TestSSHKnownHostAndKeyFetch(t *testing.T) {
	f := newSSHFixture(t)
	kh := write(t, f.dir, "known_hosts", knownhosts.Line([]string{f.srv.addr}, f.srv.hostKey)+"\n")
	rev, err := f.poll(t, GitOptions{SSHKeyFile: f.keyFile, SSHKnownHostsFile: kh}, nil)
	if err != nil {
		t.Fatalf("poll over SSH: %v", err)
	}
	if rev.Hash.String() != f.sha {
		t.Fatalf("polled %s, want %s", rev.Hash, f.sha)
	}
	if f.srv.execs.Load() == 0 {
		t.Fatal("no upload-pack ran")
	}
}

func TestSSHInsecureSkipIsLoud(t *testing.T) {
	f := newSSHFixture(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := f.poll(t, GitOptions{SSHKeyFile: f.keyFile, InsecureSkipHostKeyCheck: true}, log); err != nil {
		t.Fatalf("poll: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "HOST KEY CHECKING IS DISABLED") {
		t.Fatalf("no WARN about disabled host key checking: %s", logs.String())
	}
}

func TestGitAuthChoices(t *testing.T) {
	dir := t.TempDir()
	tok := write(t, dir, "token", "ghp_supersecret\n")
	pw := write(t, dir, "password", "hunter2")
	empty := write(t, dir, "empty", "\n")
	_, pemKey := newKey(t)
	key := write(t, dir, "key", string(pemKey))
	kh := write(t, dir, "known_hosts", "")

	a, err := GitAuth("https://git.example.com/acme/gw.git", GitOptions{HTTPSTokenFile: tok}, nil)
	if ba, ok := a.(*githttp.BasicAuth); err != nil || !ok || ba.Username != "git" || ba.Password != "ghp_supersecret" {
		t.Fatalf("token file: %#v %v", a, err)
	}
	a, err = GitAuth("https://git.example.com/acme/gw.git", GitOptions{HTTPSToken: "envtoken", HTTPSUsername: "x-access-token"}, nil)
	if ba, ok := a.(*githttp.BasicAuth); err != nil || !ok || ba.Username != "x-access-token" || ba.Password != "envtoken" {
		t.Fatalf("token env: %#v %v", a, err)
	}
	a, err = GitAuth("https://git.example.com/acme/gw.git", GitOptions{HTTPSUsername: "bob", HTTPSPasswordFile: pw}, nil)
	if ba, ok := a.(*githttp.BasicAuth); err != nil || !ok || ba.Username != "bob" || ba.Password != "hunter2" {
		t.Fatalf("basic: %#v %v", a, err)
	}
	a, err = GitAuth("git@github.com:acme/gw.git", GitOptions{SSHKeyFile: key, SSHKnownHostsFile: kh}, nil)
	if pk, ok := a.(*gitssh.PublicKeys); err != nil || !ok || pk.User != "git" || pk.HostKeyCallback == nil {
		t.Fatalf("scp-like ssh: %#v %v", a, err)
	}
	if a, err := GitAuth("https://git.example.com/acme/gw.git", GitOptions{}, nil); a != nil || err != nil {
		t.Fatalf("no credentials: %#v %v", a, err)
	}
	if a, err := GitAuth(dir, GitOptions{}, nil); a != nil || err != nil {
		t.Fatalf("local path: %#v %v", a, err)
	}

	for name, c := range map[string]struct {
		url  string
		o    GitOptions
		want string
	}{
		"ssh without known_hosts": {"ssh://git@h/r.git", GitOptions{SSHKeyFile: key}, "--ssh-known-hosts-file"},
		"ssh known_hosts missing": {"ssh://git@h/r.git", GitOptions{SSHKeyFile: key, SSHKnownHostsFile: dir + "/nope"}, "no such file"},
		"ssh without key":         {"ssh://git@h/r.git", GitOptions{SSHKnownHostsFile: kh}, "--ssh-key-file"},
		"ssh with both":           {"ssh://git@h/r.git", GitOptions{SSHKeyFile: key, SSHKnownHostsFile: kh, InsecureSkipHostKeyCheck: true}, "together"},
		"https opts on ssh":       {"ssh://git@h/r.git", GitOptions{SSHKeyFile: key, SSHKnownHostsFile: kh, HTTPSTokenFile: tok}, "HTTPS credentials"},
		"ssh opts on https":       {"https://h/r.git", GitOptions{SSHKeyFile: key}, "SSH options"},
		"creds on local":          {dir, GitOptions{HTTPSTokenFile: tok}, "local repository"},
		"password without user":   {"https://h/r.git", GitOptions{HTTPSPasswordFile: pw}, "--https-username"},
		"token and password":      {"https://h/r.git", GitOptions{HTTPSTokenFile: tok, HTTPSUsername: "u", HTTPSPasswordFile: pw}, "exclusive"},
		"token file and env":      {"https://h/r.git", GitOptions{HTTPSTokenFile: tok, HTTPSToken: "x"}, "GITXDS_HTTPS_TOKEN"},
		"empty token file":        {"https://h/r.git", GitOptions{HTTPSTokenFile: empty}, "is empty"},
		"bad key":                 {"ssh://git@h/r.git", GitOptions{SSHKeyFile: pw, SSHKnownHostsFile: kh}, "SSH key"},
	} {
		_, err := GitAuth(c.url, c.o, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
			continue
		}
		for _, secret := range []string{"ghp_supersecret", "hunter2", "PRIVATE KEY"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error leaks a secret: %v", name, err)
			}
		}
	}
}

// The host key callback is what go-git calls during the handshake: test it
// directly too, on a key it knows and one it does not.
func TestHostKeyCallback(t *testing.T) {
	dir := t.TempDir()
	known, _ := newKey(t)
	unknown, _ := newKey(t)
	kh := write(t, dir, "known_hosts", knownhosts.Line([]string{"git.example.com"}, known.PublicKey())+"\n")
	cb, algos, err := HostKeyCallback(kh, false, "git.example.com", 22)
	if err != nil {
		t.Fatal(err)
	}
	if len(algos) == 0 || algos[0] != ssh.KeyAlgoED25519 {
		t.Errorf("host key algorithms %v", algos)
	}
	addr := &fakeAddr{"192.0.2.1:22"}
	if err := cb("git.example.com:22", addr, known.PublicKey()); err != nil {
		t.Errorf("known key refused: %v", err)
	}
	if err := cb("git.example.com:22", addr, unknown.PublicKey()); err == nil {
		t.Error("changed key accepted")
	}
	if err := cb("other.example.com:22", addr, known.PublicKey()); err == nil {
		t.Error("unknown host accepted")
	}
}

type fakeAddr struct{ s string }

func (a *fakeAddr) Network() string { return "tcp" }
func (a *fakeAddr) String() string  { return a.s }
