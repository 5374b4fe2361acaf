package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Authenticator checks pre-shared-key JWTs, as Clair v4's auth.psk: the
// request carries "Authorization: Bearer <JWT>", HMAC-signed (HS256, HS384
// or HS512) with the key; "exp" and "nbf", when present, hold with 15 s
// leeway; "iss" must be one of Issuers (any, when Issuers is empty).
type Authenticator struct {
	Key     []byte
	Issuers []string
	Now     func() time.Time // nil means time.Now
}

const jwtLeeway = 15 * time.Second

func (a *Authenticator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			WriteError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		if err := a.Verify(strings.TrimSpace(tok)); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, "invalid token: "+err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Verify checks a compact JWS token.
func (a *Authenticator) Verify(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	var h func() hash.Hash
	switch header.Alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		return fmt.Errorf("algorithm %q not accepted (want HS256, HS384 or HS512)", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("signature is not base64url")
	}
	mac := hmac.New(h, a.Key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return errors.New("bad signature")
	}
	var claims struct {
		Iss string   `json:"iss"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	// In seconds as floats, as the claims are: any value compares (a
	// time.Time of int64 nanoseconds ends in 2262).
	t, leeway := float64(now.UnixNano())/float64(time.Second), jwtLeeway.Seconds()
	if claims.Exp != nil && t > *claims.Exp+leeway {
		return errors.New("expired")
	}
	if claims.Nbf != nil && t < *claims.Nbf-leeway {
		return errors.New("not valid yet")
	}
	if len(a.Issuers) > 0 && !slices.Contains(a.Issuers, claims.Iss) {
		return fmt.Errorf("issuer %q not allowed", claims.Iss)
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	return json.Unmarshal(b, v)
}
