package pagetoken

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

type page struct {
	After string `json:"after"`
	N     int    `json:"n"`
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestRoundTripAcrossCodecs(t *testing.T) {
	a, err := New(key(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(key(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Encode(page{"CVE-2023-1", 7})
	if err != nil {
		t.Fatal(err)
	}
	var got page
	if err := b.Decode(tok, &got); err != nil {
		t.Fatalf("same key, other codec: %v", err)
	}
	if got != (page{"CVE-2023-1", 7}) {
		t.Fatalf("got %+v", got)
	}
	tok2, _ := a.Encode(page{"CVE-2023-1", 7})
	if tok2 == tok {
		t.Fatal("two encodings of one value are equal: nonce not random")
	}
}

func TestOtherKeyInvalid(t *testing.T) {
	a, _ := New(key(1), time.Hour)
	b, _ := New(key(2), time.Hour)
	tok, _ := a.Encode(page{N: 1})
	var got page
	if err := b.Decode(tok, &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other key: err = %v, want ErrInvalid", err)
	}
	r, _ := NewRandom(time.Hour)
	if err := r.Decode(tok, &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("random key: err = %v, want ErrInvalid", err)
	}
}

func TestTampered(t *testing.T) {
	c, _ := New(key(3), time.Hour)
	tok, _ := c.Encode(page{After: "x", N: 2})
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		var got page
		if err := c.Decode(base64.RawURLEncoding.EncodeToString(bad), &got); !errors.Is(err, ErrInvalid) {
			t.Fatalf("flipped byte %d: err = %v, want ErrInvalid", i, err)
		}
	}
	for _, s := range []string{"", "!!!", "abc", tok[:len(tok)-4], tok + "AA"} {
		var got page
		if err := c.Decode(s, &got); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}

func TestExpired(t *testing.T) {
	c, _ := New(key(4), time.Minute)
	start := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return start }
	tok, _ := c.Encode(page{N: 3})
	var got page
	c.now = func() time.Time { return start.Add(59 * time.Second) }
	if err := c.Decode(tok, &got); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	c.now = func() time.Time { return start.Add(time.Minute) }
	err := c.Decode(tok, &got)
	if !errors.Is(err, ErrExpired) || errors.Is(err, ErrInvalid) {
		t.Fatalf("at expiry: err = %v, want ErrExpired only", err)
	}
}

func TestNewAndParseKey(t *testing.T) {
	if _, err := New(make([]byte, 16), time.Hour); err == nil {
		t.Error("16-byte key accepted")
	}
	if _, err := New(key(1), 0); err == nil {
		t.Error("zero ttl accepted")
	}
	k := key(9)
	for _, s := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	if _, err := ParseKey(base64.StdEncoding.EncodeToString(make([]byte, 31))); err == nil {
		t.Error("31-byte key accepted")
	}
	if _, err := ParseKey("not base64 at all!"); err == nil {
		t.Error("garbage key accepted")
	}
}

func TestPayloadMismatchInvalid(t *testing.T) {
	c, _ := New(key(5), time.Hour)
	tok, _ := c.Encode("a string")
	var got page
	if err := c.Decode(tok, &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}
