package main

import (
	"fmt"
	"os"

	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/signing"
)

// keyringConfig is what opening the keyring needs from the configuration.
type keyringConfig struct {
	dir        string
	password   []byte
	trustRoots string
}

func newKeyringConfig(c config.Signing) keyringConfig {
	return keyringConfig{dir: c.KeysDir, password: []byte(c.KeyPassword.Value()), trustRoots: c.TrustRoots}
}

// openKeyring opens the issuing authorities' keyring; errors name the
// configuration key they concern.
func openKeyring(c keyringConfig) (*signing.Keyring, error) {
	var opts []signing.Option
	if len(c.password) > 0 {
		pw := c.password
		opts = append(opts, signing.WithPassword(func(string) ([]byte, error) { return pw, nil }))
	}
	if c.trustRoots != "" {
		pem, err := os.ReadFile(c.trustRoots)
		if err != nil {
			return nil, fmt.Errorf("signing.trust_roots: %w", err)
		}
		opts = append(opts, signing.WithTrustRoots(pem))
	}
	ring, err := signing.OpenKeyring(c.dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("signing.keys_dir: %w", err)
	}
	return ring, nil
}
