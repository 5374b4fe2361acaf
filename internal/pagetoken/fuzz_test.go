package pagetoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"
)

// madeAt is when the genuine tokens were made.
var madeAt = time.Unix(1_700_000_000, 0)

// genuine are the tokens that Encode made with key(1) at madeAt, valid for
// an hour, and what they carry: the only bytes that may decode under that
// key. (Each Encode draws a new nonce, so they are kept made, not remade.)
var genuine = map[string]page{
	"Lk8zU-0_zcap4uBBhJCEBFOZDqPXBB2ZCILq4QNvO0c1Lr8_kORHbAc90Fzyfjj8k2jmSMY3Df7IYcoi0B0d5g":                       {"CVE-2023-1", 7},
	"0owCDZ5cORC8SWhP4H28x3sPAsujQ2ehcg0hU57-g1ARz4ciTeg-xtQq38qjR1Uxn1VcI8Jf":                                     {"", 0},
	"tYsBjG06dH6kucx5mLSsWzWt60f3d9hDsJSahvDKiLC143k0l7yaHcELe_jPllEyQUMdbPYZoKx9vBRpCVAgu23KRwsD6zzLLFg4VnkTSQAm": {"debian:12\x00CVE-2024-\u00e9", -3},
}

// codecAt is a Codec of key k (one-hour tokens) whose clock says at.
func codecAt(t testing.TB, k byte, at time.Time) *Codec {
	c, err := New(key(k), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return at }
	return c
}

// FuzzDecode: a string decodes under key(1) only when its bytes are a
// genuine token's, and then to what that token carries (ErrExpired once
// past its hour); anything else, and everything under another key, is
// ErrInvalid. Decode never panics.
func FuzzDecode(f *testing.F) {
	valid, expired, other := codecAt(f, 1, madeAt.Add(59*time.Minute)), codecAt(f, 1, madeAt.Add(time.Hour)), codecAt(f, 2, madeAt)
	want := map[string]page{}
	for tok, p := range genuine {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			f.Fatal(err)
		}
		want[string(raw)] = p
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "\n")
		f.Add("A" + tok[1:])
	}
	for _, s := range []string{"", "!!!", "abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "e30", "Lk8zU+0/zcap4uBB=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		p, isGenuine := want[string(raw)]
		isGenuine = isGenuine && err == nil
		var got page
		err = valid.Decode(tok, &got)
		switch {
		case isGenuine && (err != nil || got != p):
			t.Fatalf("genuine token %q: %+v, %v; want %+v", tok, got, err, p)
		case !isGenuine && (!errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired)):
			t.Fatalf("token %q: %+v, %v; want ErrInvalid", tok, got, err)
		}
		err = expired.Decode(tok, &got)
		if isGenuine != errors.Is(err, ErrExpired) || isGenuine == errors.Is(err, ErrInvalid) {
			t.Fatalf("token %q an hour on: %v; genuine: %v", tok, err, isGenuine)
		}
		if err := other.Decode(tok, &got); !errors.Is(err, ErrInvalid) {
			t.Fatalf("token %q under another key: %v, want ErrInvalid", tok, err)
		}
	})
}

// FuzzRoundTrip: any payload comes back as its JSON says, from any Codec
// of the same key, in a token that needs no escaping in a URL; under
// another key, or with any one byte changed, the token is ErrInvalid.
func FuzzRoundTrip(f *testing.F) {
	for k, p := range genuine {
		f.Add(p.After, p.N, uint(len(k)))
	}
	f.Add("\xff\xfe invalid UTF-8", -1<<31, uint(0))
	f.Fuzz(func(t *testing.T, after string, n int, flip uint) {
		enc, dec, other := codecAt(t, 1, madeAt), codecAt(t, 1, madeAt.Add(time.Minute)), codecAt(t, 2, madeAt)
		v := page{After: after, N: n}
		tok, err := enc.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if url.QueryEscape(tok) != tok {
			t.Fatalf("token %q needs escaping in a URL", tok)
		}
		var want, got page
		b, _ := json.Marshal(v)
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(tok, &got); err != nil || got != want {
			t.Fatalf("%+v: decoded %+v, %v; want %+v", v, got, err, want)
		}
		if err := other.Decode(tok, &got); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v under another key: %v, want ErrInvalid", v, err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(raw)
		bad[flip%uint(len(bad))] ^= byte(flip>>8) | 1
		if err := dec.Decode(base64.RawURLEncoding.EncodeToString(bad), &got); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v with byte %d changed: %v, want ErrInvalid", v, flip%uint(len(bad)), err)
		}
	})
}
