package lookup

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"

	"github.com/emmansun/gmsm/sm3"

	"github.com/licensehub/licensehub"
)

func asError(err error, target **licensehub.Error) bool { return errors.As(err, target) }

// randomToken is 32 random bytes, base64url without padding (43 chars).
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// digest is the SM3 of s.
func digest(s string) [sm3.Size]byte { return sm3.Sum([]byte(s)) }

// idOf is the hex of the first 16 bytes of SM3(secret).
func idOf(secret string) string {
	d := digest(secret)
	return hex.EncodeToString(d[:16])
}

// validSecret reports whether s looks like a randomToken (43 base64url
// characters), so garbage never reaches the stores.
func validSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
