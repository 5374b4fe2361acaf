// Package pagetoken makes opaque, tamper-proof, expiring pagination tokens.
// A token is AES-256-GCM over the JSON of a value with its expiry time; the
// nonce is random. Servers sharing the same key (Clair's `paginationkey`: a
// base64 32-byte key) accept each other's tokens; a Codec made with a
// random key (NewRandom) only accepts its own.
package pagetoken

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// KeySize is the length of a key in bytes.
const KeySize = 32

// DefaultTTL is how long a token stays valid, as in Clair.
const DefaultTTL = time.Hour

var (
	// ErrInvalid marks a token that was not made by a Codec with this key,
	// was altered, or is not a token at all.
	ErrInvalid = errors.New("invalid page token")
	// ErrExpired marks a genuine token past its expiry.
	ErrExpired = errors.New("expired page token")
)

// Codec encodes and decodes tokens with one key.
type Codec struct {
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time
}

// New returns a Codec with a KeySize-byte key whose tokens expire after ttl.
func New(key []byte, ttl time.Duration) (*Codec, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("pagetoken: key is %d bytes, want %d", len(key), KeySize)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("pagetoken: ttl %v is not positive", ttl)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pagetoken: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pagetoken: %w", err)
	}
	return &Codec{aead: aead, ttl: ttl, now: time.Now}, nil
}

// NewRandom returns a Codec with a fresh random key: its tokens are valid
// only for this Codec (not across server instances or restarts).
func NewRandom(ttl time.Duration) (*Codec, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("pagetoken: random key: %w", err)
	}
	return New(key, ttl)
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not)
// KeySize-byte key, as Clair's `paginationkey`.
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("pagination key decodes to %d bytes, want %d", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("pagination key is not base64")
}

// Encode returns a token carrying v (marshalled as JSON), valid for the
// Codec's ttl from now.
func (c *Codec) Encode(v any) (string, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("pagetoken: encode: %w", err)
	}
	plain := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(plain, uint64(c.now().Add(c.ttl).Unix()))
	plain = append(plain, body...)
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("pagetoken: nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, plain, nil)), nil
}

// Decode checks tok and unmarshals its value into v. A token that does not
// authenticate gives an error wrapping ErrInvalid; an authentic one past its
// expiry, ErrExpired.
func (c *Codec) Decode(tok string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	ns := c.aead.NonceSize()
	if len(raw) < ns+c.aead.Overhead()+8 {
		return fmt.Errorf("%w: too short", ErrInvalid)
	}
	plain, err := c.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return fmt.Errorf("%w: authentication failed", ErrInvalid)
	}
	if len(plain) < 8 {
		return fmt.Errorf("%w: too short", ErrInvalid)
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(plain)), 0)
	if !c.now().Before(exp) {
		return fmt.Errorf("%w: expired at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if err := json.Unmarshal(plain[8:], v); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	return nil
}
