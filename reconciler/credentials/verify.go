package credentials

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CommitVerifier checks a commit before its tree is used.
type CommitVerifier func(c *object.Commit) error

// PGPVerifier returns a verifier that accepts a commit only when it carries
// an OpenPGP signature made by a key of the armored keyring in file (as
// Flux's spec.verify with mode HEAD). Unsigned commits, SSH-signed commits
// (not supported yet) and signatures by other keys are refused.
func PGPVerifier(file string) (CommitVerifier, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("credentials: signature keyring: %w", err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("credentials: signature keyring %s: %v", file, err)
	}
	if len(ring) == 0 {
		return nil, fmt.Errorf("credentials: signature keyring %s holds no key", file)
	}
	armored := string(b)
	return func(c *object.Commit) error {
		short := c.Hash.String()[:12]
		sig := strings.TrimSpace(c.PGPSignature)
		switch {
		case sig == "":
			return fmt.Errorf("commit %s is not signed", short)
		case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
			return fmt.Errorf("commit %s has an SSH signature; only OpenPGP signatures can be verified", short)
		}
		e, err := c.Verify(armored)
		if err != nil {
			return fmt.Errorf("signature of commit %s does not verify against the keyring: %v", short, err)
		}
		if e == nil {
			return errors.New("signature verified by no key")
		}
		return nil
	}, nil
}
