package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is the file given to `serve --notify-config`. Secrets are read from
// files, never written inline.
type Config struct {
	Providers []ProviderConfig `json:"providers"`
}

// Type of a provider.
type Type string

const (
	GitHub  Type = "github"
	GitLab  Type = "gitlab"
	Generic Type = "generic"
	Slack   Type = "slack"
)

// ProviderConfig is one entry of Config.Providers.
type ProviderConfig struct {
	Type Type `json:"type"`
	// Address: the repository (github, gitlab), or the URL to POST to
	// (generic, slack).
	Address string `json:"address"`
	// APIURL of GitHub Enterprise (default: api.github.com for github.com,
	// <scheme>://<host>/api/v3 otherwise).
	APIURL string `json:"apiURL,omitempty"`
	// TokenFile: the GitHub or GitLab token.
	TokenFile string `json:"tokenFile,omitempty"`
	// SecretFile: the generic provider's HMAC key.
	SecretFile string `json:"secretFile,omitempty"`
	// Context of the commit status (default "gitxds/<overlay>").
	Context string `json:"context,omitempty"`
	// TargetURL of the commit status, e.g. the admin UI.
	TargetURL string `json:"targetURL,omitempty"`
}

// Load reads a notification config file and builds its providers.
func Load(path string, client *http.Client) ([]Provider, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Provider
	for i, pc := range c.Providers {
		p, err := pc.build(client)
		if err != nil {
			return nil, fmt.Errorf("%s: providers[%d] (%s): %w", path, i, pc.Type, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (pc ProviderConfig) build(client *http.Client) (Provider, error) {
	if client == nil {
		client = http.DefaultClient
	}
	u, err := url.Parse(pc.Address)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("address %q: want an http(s) URL", pc.Address)
	}
	readSecret := func(field, file string) (string, error) {
		if file == "" {
			return "", fmt.Errorf("%s is required", field)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("%s %s is empty", field, file)
		}
		return s, nil
	}
	repoPath := strings.Trim(strings.TrimSuffix(u.Path, ".git"), "/")
	switch pc.Type {
	case GitHub:
		tok, err := readSecret("tokenFile", pc.TokenFile)
		if err != nil {
			return nil, err
		}
		owner, repo, ok := strings.Cut(repoPath, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return nil, fmt.Errorf("address %q: want https://<host>/<owner>/<repository>", pc.Address)
		}
		api := pc.APIURL
		switch {
		case api != "":
		case u.Host == "github.com":
			api = "https://api.github.com"
		default:
			api = u.Scheme + "://" + u.Host + "/api/v3"
		}
		return &gitHub{c: client, api: strings.TrimSuffix(api, "/"), owner: owner, repo: repo, token: tok, context: pc.Context, target: pc.TargetURL, addr: pc.Address}, nil
	case GitLab:
		tok, err := readSecret("tokenFile", pc.TokenFile)
		if err != nil {
			return nil, err
		}
		if repoPath == "" {
			return nil, fmt.Errorf("address %q: want https://<host>/<group>/<project>", pc.Address)
		}
		return &gitLab{c: client, base: u.Scheme + "://" + u.Host, project: repoPath, token: tok, context: pc.Context, target: pc.TargetURL, addr: pc.Address}, nil
	case Generic:
		sec, err := readSecret("secretFile", pc.SecretFile)
		if err != nil {
			return nil, err
		}
		return &generic{c: client, url: pc.Address, secret: []byte(sec)}, nil
	case Slack:
		return &slack{c: client, url: pc.Address}, nil
	}
	return nil, fmt.Errorf("unknown type %q (github, gitlab, generic, slack)", pc.Type)
}

// post sends a JSON body and classifies the answer: 2xx ok, 4xx permanent
// (but 408 and 429), anything else retried.
func post(ctx context.Context, c *http.Client, url string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gitxds")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg))))
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

func statusContext(configured string, e Event) string {
	if configured != "" {
		return configured
	}
	if e.Overlay != "" {
		return "gitxds/" + e.Overlay
	}
	return "gitxds"
}

// truncate cuts s to n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// gitHub sets commit statuses: POST {api}/repos/{owner}/{repo}/statuses/{sha}
// with {state, context, description, target_url}.
type gitHub struct {
	c                *http.Client
	api, owner, repo string
	token            string
	context, target  string
	addr             string
}

func (g *gitHub) Name() string { return string(GitHub) + ":" + g.addr }

func (g *gitHub) Send(ctx context.Context, e Event) error {
	sha := e.Commit()
	if sha == "" {
		return Permanent(fmt.Errorf("revision %q names no commit", e.Revision))
	}
	body, _ := json.Marshal(map[string]string{
		"state":       string(e.State), // pending, success, failure
		"context":     statusContext(g.context, e),
		"description": truncate(summary(e), 140), // GitHub's limit
		"target_url":  g.target,
	})
	u := fmt.Sprintf("%s/repos/%s/%s/statuses/%s", g.api, url.PathEscape(g.owner), url.PathEscape(g.repo), sha)
	return post(ctx, g.c, u, body, http.Header{"Authorization": {"Bearer " + g.token}, "Accept": {"application/vnd.github+json"}})
}

// gitLab sets commit statuses: POST {base}/api/v4/projects/{id}/statuses/{sha}
// with the PRIVATE-TOKEN header.
type gitLab struct {
	c               *http.Client
	base, project   string
	token           string
	context, target string
	addr            string
}

func (g *gitLab) Name() string { return string(GitLab) + ":" + g.addr }

// gitLabState: GitLab's states are pending, running, success, failed,
// canceled.
var gitLabState = map[State]string{Pending: "running", Success: "success", Failure: "failed"}

func (g *gitLab) Send(ctx context.Context, e Event) error {
	sha := e.Commit()
	if sha == "" {
		return Permanent(fmt.Errorf("revision %q names no commit", e.Revision))
	}
	body, _ := json.Marshal(map[string]string{
		"state":       gitLabState[e.State],
		"name":        statusContext(g.context, e),
		"description": truncate(summary(e), 255),
		"target_url":  g.target,
	})
	u := fmt.Sprintf("%s/api/v4/projects/%s/statuses/%s", g.base, url.PathEscape(g.project), sha)
	return post(ctx, g.c, u, body, http.Header{"Private-Token": {g.token}})
}

// generic POSTs the event as JSON, signed like the generic webhook:
// X-Signature: sha256=<hex HMAC-SHA256 of the body>.
type generic struct {
	c      *http.Client
	url    string
	secret []byte
}

func (g *generic) Name() string { return string(Generic) + ":" + g.url }

func (g *generic) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return Permanent(err)
	}
	m := hmac.New(sha256.New, g.secret)
	m.Write(body)
	return post(ctx, g.c, g.url, body, http.Header{"X-Signature": {"sha256=" + hex.EncodeToString(m.Sum(nil))}})
}

// slack posts a message to an incoming webhook.
type slack struct {
	c   *http.Client
	url string
}

func (s *slack) Name() string { return string(Slack) + ":" + redactPath(s.url) }

var slackIcon = map[State]string{Pending: ":hourglass:", Success: ":white_check_mark:", Failure: ":x:"}

func (s *slack) Send(ctx context.Context, e Event) error {
	text := fmt.Sprintf("%s gitxds %s %s: %s", slackIcon[e.State], e.Overlay, e.Revision, summary(e))
	body, _ := json.Marshal(map[string]string{"text": strings.Join(strings.Fields(text), " ")})
	return post(ctx, s.c, s.url, body, nil)
}

// redactPath keeps a webhook URL's secret path out of names and logs.
func redactPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "slack"
	}
	return u.Scheme + "://" + u.Host
}
