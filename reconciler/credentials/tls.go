package credentials

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSFiles are the xDS server's TLS flags.
type TLSFiles struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, turns on mutual TLS: every client must present
	// a certificate signed by one of these CAs.
	ClientCAFile string
}

// Enabled reports whether any TLS flag is set.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.ClientCAFile != "" }

// ServerTLS returns the server TLS configuration, or nil when no flag is
// set. The certificate and key are reloaded when either file changes (as
// cert-manager or a kubelet-projected Secret rotates them), checked at most
// every few seconds, on new connections; a reload that fails keeps the
// current pair and is logged. The client CA bundle is read once.
func ServerTLS(f TLSFiles, log *slog.Logger) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("credentials: TLS needs both --xds-tls-cert-file and --xds-tls-key-file")
	}
	if log == nil {
		log = slog.Default()
	}
	kp := &keyPair{cert: f.CertFile, key: f.KeyFile, log: log}
	if err := kp.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	if f.ClientCAFile != "" {
		pem, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("credentials: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("credentials: client CA %s: no PEM certificate", f.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// keyPairCheckEvery bounds how often the files are stat'ed (a variable for
// tests).
var keyPairCheckEvery = 5 * time.Second

type keyPair struct {
	cert, key string
	log       *slog.Logger

	mu      sync.Mutex
	current *tls.Certificate
	mtimes  [2]time.Time
	checked time.Time
}

func (k *keyPair) stat() ([2]time.Time, error) {
	var m [2]time.Time
	for i, name := range []string{k.cert, k.key} {
		fi, err := os.Stat(name)
		if err != nil {
			return m, err
		}
		m[i] = fi.ModTime()
	}
	return m, nil
}

func (k *keyPair) load() error {
	m, err := k.stat()
	if err != nil {
		return fmt.Errorf("credentials: TLS key pair: %w", err)
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		return fmt.Errorf("credentials: TLS key pair %s, %s: %v", k.cert, k.key, err)
	}
	k.current, k.mtimes, k.checked = &c, m, time.Now()
	return nil
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.checked) < keyPairCheckEvery {
		return k.current, nil
	}
	k.checked = time.Now()
	if m, err := k.stat(); err == nil && m != k.mtimes {
		if err := k.load(); err != nil {
			k.log.Error("reloading the xDS TLS certificate failed; keeping the current one", "error", err)
		} else {
			k.log.Info("reloaded the xDS TLS certificate", "cert", k.cert)
		}
	}
	return k.current, nil
}
