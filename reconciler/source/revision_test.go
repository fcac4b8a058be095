package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestRevisionString(t *testing.T) {
	t.Parallel()
	h := plumbing.NewHash(sha)
	cases := []struct {
		rev  Revision
		want string
	}{
		{Revision{Ref: "main", Hash: h}, "main@sha1:" + sha},
		{Revision{Ref: "refs/pull/1/head", Hash: h}, "refs/pull/1/head@sha1:" + sha},
		{Revision{Ref: "user@feature", Hash: h}, "user@feature@sha1:" + sha},
		{Revision{Hash: h}, "sha1:" + sha},
		{Revision{}, ""},
	}
	for _, c := range cases {
		if got := c.rev.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.rev, got, c.want)
		}
		if c.want == "" {
			continue
		}
		back, err := ParseRevision(c.want)
		if err != nil || back != c.rev {
			t.Errorf("ParseRevision(%q) = %#v, %v; want %#v", c.want, back, err, c.rev)
		}
	}
	if got := (Revision{Ref: "main", Hash: h}).Short(); got != "main@0123456789ab" {
		t.Errorf("Short() = %q", got)
	}
}

func TestParseRevisionErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "main", sha, "main@" + sha, "@sha1:" + sha, "main@sha1:" + sha[:39],
		"main@sha1:" + strings.Repeat("g", 40), "sha1:" + strings.Repeat("0", 40),
	} {
		if rev, err := ParseRevision(s); err == nil {
			t.Errorf("ParseRevision(%q) = %s, want an error", s, rev)
		}
	}
}

func TestErrorsHideCredentials(t *testing.T) {
	t.Parallel()
	shown, secrets := redactURL("https://alice:hunter2%21x@git.example.com/config.git")
	if shown != "https://alice@git.example.com/config.git" {
		t.Errorf("shown = %q", shown)
	}
	red := redactor{secrets: secrets}
	cause := errors.New(`Get "https://alice:hunter2%21x@git.example.com/info/refs": hunter2!x rejected`)
	err := red.wrap(nil, "poll "+shown, errors.Join(transport.ErrAuthorizationFailed, cause))
	if msg := err.Error(); strings.Contains(msg, "hunter2") {
		t.Errorf("message holds the password: %s", msg)
	}
	if !errors.Is(err, ErrAuth) || !errors.Is(err, transport.ErrAuthorizationFailed) {
		t.Errorf("chain lost: %v", err)
	}
	if errors.Is(err, cause) {
		t.Error("the raw cause, which may hold credentials, is kept in the chain")
	}

	shown, secrets = redactURL("https://ghp_token123@github.com/org/repo.git")
	if shown != "https://github.com/org/repo.git" || len(secrets) == 0 {
		t.Errorf("token URL: shown %q, secrets %d", shown, len(secrets))
	}
	if shown, _ := redactURL("ssh://git@github.com/org/repo.git"); shown != "ssh://git@github.com/org/repo.git" {
		t.Errorf("ssh URL: shown %q", shown)
	}
}

func TestNewLocalOrRemote(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := map[string]bool{ // URL -> local
		dir:                              true,
		".":                              true,
		"relative/missing":               true,
		"file://" + dir:                  false,
		"https://example.com/r.git":      false,
		"ssh://git@example.com/r.git":    false,
		"git@github.com:org/config.git":  false,
		"http://u:p@example.com:8080/r":  false,
		"./with:colon-after-slash/x.git": true,
	}
	for u, local := range cases {
		src, err := New(Options{URL: u})
		if err != nil {
			t.Errorf("New(%q): %v", u, err)
			continue
		}
		if got := src.local != ""; got != local {
			t.Errorf("New(%q): local = %v, want %v", u, got, local)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without URL succeeded")
	}
}
