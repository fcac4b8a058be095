// Package credentials turns the trust flags of `gitxds serve` into what the
// stages use: Git transport authentication (SSH keys with mandatory
// known_hosts verification, HTTPS tokens or basic auth), the xDS server's
// TLS configuration (with mutual TLS), and commit signature verification.
//
// Secrets are read from files (or one environment variable for the HTTPS
// token) and never logged; errors name files, never their content.
package credentials

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// GitOptions are the repository credential flags.
type GitOptions struct {
	// SSHKeyFile is a private key (OpenSSH or PEM); SSHKeyPassphraseFile
	// optionally holds its passphrase.
	SSHKeyFile, SSHKeyPassphraseFile string
	// SSHKnownHostsFile is required for SSH URLs unless
	// InsecureSkipHostKeyCheck is set.
	SSHKnownHostsFile        string
	InsecureSkipHostKeyCheck bool
	// HTTPSUsername with HTTPSPasswordFile is basic auth. HTTPSTokenFile, or
	// HTTPSToken (the value, from GITXDS_HTTPS_TOKEN), is a token sent as
	// the basic-auth password, with HTTPSUsername or "git" as user: what
	// GitHub, GitLab, Gitea and Bitbucket accept for Git over HTTPS.
	HTTPSUsername     string
	HTTPSPasswordFile string
	HTTPSTokenFile    string
	HTTPSToken        string
}

func (o GitOptions) hasSSH() bool {
	return o.SSHKeyFile != "" || o.SSHKeyPassphraseFile != "" || o.SSHKnownHostsFile != "" || o.InsecureSkipHostKeyCheck
}

func (o GitOptions) hasHTTPS() bool {
	return o.HTTPSUsername != "" || o.HTTPSPasswordFile != "" || o.HTTPSTokenFile != "" || o.HTTPSToken != ""
}

// GitAuth returns the transport authentication for repoURL, or nil when the
// URL needs none (a local path or file://, or HTTP(S) without credentials).
// Credentials of the wrong kind for the URL are an error, as is an SSH URL
// without a key or without a known_hosts file (unless host key checking is
// disabled, which is logged at WARN).
func GitAuth(repoURL string, o GitOptions, log *slog.Logger) (transport.AuthMethod, error) {
	if log == nil {
		log = slog.Default()
	}
	proto := "file"
	var ep *transport.Endpoint
	if strings.Contains(repoURL, "://") || isSCPLike(repoURL) {
		e, err := transport.NewEndpoint(repoURL)
		if err != nil {
			return nil, fmt.Errorf("credentials: cannot parse the repository URL: %v", redactErr(err, repoURL))
		}
		ep, proto = e, e.Protocol
	}
	switch proto {
	case "ssh":
		if o.hasHTTPS() {
			return nil, errors.New("credentials: HTTPS credentials given for an SSH repository URL")
		}
		return sshAuth(ep, o, log)
	case "http", "https":
		if o.hasSSH() {
			return nil, errors.New("credentials: SSH options given for an HTTP(S) repository URL")
		}
		a, err := httpsAuth(o)
		if a != nil && proto == "http" {
			log.Warn("repository credentials will be sent over plain HTTP; use https://")
		}
		return a, err
	default:
		if o.hasSSH() || o.hasHTTPS() {
			return nil, errors.New("credentials: repository credentials given for a local repository")
		}
		return nil, nil
	}
}

func sshAuth(ep *transport.Endpoint, o GitOptions, log *slog.Logger) (transport.AuthMethod, error) {
	if o.SSHKeyFile == "" {
		return nil, errors.New("credentials: an SSH repository URL needs --ssh-key-file")
	}
	pass := ""
	if o.SSHKeyPassphraseFile != "" {
		p, err := ReadSecretFile(o.SSHKeyPassphraseFile)
		if err != nil {
			return nil, err
		}
		pass = p
	}
	user := ep.User
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, pass)
	if err != nil {
		// The parser's message never holds key material.
		return nil, fmt.Errorf("credentials: SSH key %s: %v", o.SSHKeyFile, err)
	}
	cb, algos, err := HostKeyCallback(o.SSHKnownHostsFile, o.InsecureSkipHostKeyCheck, ep.Host, ep.Port)
	if err != nil {
		return nil, err
	}
	if o.InsecureSkipHostKeyCheck {
		log.Warn("SSH HOST KEY CHECKING IS DISABLED (--insecure-skip-host-key-check): anyone who can intercept the connection to the Git server can serve gitxds any configuration",
			"host", ep.Host)
	}
	keys.HostKeyCallback = cb
	keys.HostKeyAlgorithms = algos
	return keys, nil
}

// HostKeyCallback checks the server's host key against knownHostsFile,
// which must exist and be readable. With insecure it accepts any key
// (and knownHostsFile must be empty, to avoid a half-meant configuration).
// algos are the key algorithms known_hosts holds for host:port, so the
// server is asked for a key of a type that can be verified.
func HostKeyCallback(knownHostsFile string, insecure bool, host string, port int) (ssh.HostKeyCallback, []string, error) {
	if insecure {
		if knownHostsFile != "" {
			return nil, nil, errors.New("credentials: --ssh-known-hosts-file and --insecure-skip-host-key-check together")
		}
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	if knownHostsFile == "" {
		return nil, nil, errors.New("credentials: an SSH repository URL needs --ssh-known-hosts-file (host keys are always verified; --insecure-skip-host-key-check disables it)")
	}
	if _, err := os.Stat(knownHostsFile); err != nil {
		return nil, nil, fmt.Errorf("credentials: known_hosts: %w", err)
	}
	db, err := gitssh.NewKnownHostsDb(knownHostsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("credentials: known_hosts %s: %v", knownHostsFile, err)
	}
	if port == 0 {
		port = 22
	}
	return db.HostKeyCallback(), db.HostKeyAlgorithms(net.JoinHostPort(host, strconv.Itoa(port))), nil
}

func httpsAuth(o GitOptions) (transport.AuthMethod, error) {
	token := o.HTTPSToken
	if o.HTTPSTokenFile != "" {
		if token != "" {
			return nil, errors.New("credentials: both --https-token-file and GITXDS_HTTPS_TOKEN are set")
		}
		t, err := ReadSecretFile(o.HTTPSTokenFile)
		if err != nil {
			return nil, err
		}
		token = t
	}
	switch {
	case token != "" && o.HTTPSPasswordFile != "":
		return nil, errors.New("credentials: an HTTPS token and --https-password-file are exclusive")
	case token != "":
		user := o.HTTPSUsername
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: token}, nil
	case o.HTTPSPasswordFile != "":
		if o.HTTPSUsername == "" {
			return nil, errors.New("credentials: --https-password-file needs --https-username")
		}
		p, err := ReadSecretFile(o.HTTPSPasswordFile)
		if err != nil {
			return nil, err
		}
		return &githttp.BasicAuth{Username: o.HTTPSUsername, Password: p}, nil
	case o.HTTPSUsername != "":
		return nil, errors.New("credentials: --https-username needs --https-password-file or a token")
	}
	return nil, nil
}

// ReadSecretFile reads a secret from a file, without a trailing newline. An
// empty file is an error; the error names the file, never the content.
func ReadSecretFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("credentials: %s is empty", name)
	}
	return s, nil
}

// isSCPLike is [user@]host:path, where no slash comes before the colon.
func isSCPLike(u string) bool {
	if _, err := os.Stat(u); err == nil {
		return false
	}
	i := strings.Index(u, ":")
	return i > 0 && !strings.Contains(u[:i], "/")
}

// redactErr drops the URL's userinfo from err's text.
func redactErr(err error, u string) string {
	msg := err.Error()
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			msg = strings.ReplaceAll(msg, rest[:at], "REDACTED")
		}
	}
	return msg
}
