package update

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vigil-scanner/vigil/internal/store"
)

// secdb returns a real-format Alpine secdb JSON document for branch/repo
// with n packages, each fixed in one version for one CVE.
func secdb(branch, repo string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"apkurl":"{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk","archs":["x86_64"],"reponame":%q,"urlprefix":"https://dl-cdn.alpinelinux.org/alpine","distroversion":%q,"packages":[`, repo, branch)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"pkg":{"name":"pkg%d","secfixes":{"1.%d-r0":["CVE-2024-%05d"]}}}`, i, i, i)
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// scopes returns the stored scopes.
func scopes(t testing.TB, st *store.Store) []store.Scope {
	t.Helper()
	sc, err := st.Scopes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func compressWith(t testing.TB, doc []byte, kind string) []byte {
	t.Helper()
	var b bytes.Buffer
	switch kind {
	case "plain":
		return doc
	case "gzip":
		zw := gzip.NewWriter(&b)
		zw.Write(doc)
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&b)
		zw.Write(doc)
		zw.Close()
	case "bzip2":
		if _, err := exec.LookPath("bzip2"); err != nil {
			t.Skip("no bzip2 command")
		}
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(doc)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return b.Bytes()
}

// TestImportCompressions: the same document, plain or compressed and under
// any name, imports into the same scope with the same advisories, and the
// stored digest is that of the document as read.
func TestImportCompressions(t *testing.T) {
	doc := secdb("v3.17", "main", 20)
	for _, kind := range []string{"plain", "gzip", "zstd", "bzip2"} {
		t.Run(kind, func(t *testing.T) {
			st := openStore(t)
			raw := compressWith(t, doc, kind)
			p := filepath.Join(t.TempDir(), "no-telling-name.bin")
			if err := os.WriteFile(p, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			sc, err := ImportFile(context.Background(), st, "", p, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if sc.Scope != "alpine-secdb/v3.17/main" || sc.Advisories != 20 || sc.Source != "alpine-secdb" || sc.Origin != p {
				t.Errorf("scope = %+v", sc)
			}
			sum := sha256.Sum256(raw)
			got := scopes(t, st)
			if len(got) != 1 || got[0].Digest != "sha256:"+hex.EncodeToString(sum[:]) || got[0].Advisories != 20 {
				t.Errorf("stored scopes = %+v, want the digest of the file as read", got)
			}
		})
	}
}

func TestImportRefusals(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	if _, err := Import(ctx, st, "", "main.json", bytes.NewReader(secdb("v3.18", "main", 10)), DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	before := scopes(t, st)
	for what, c := range map[string]struct {
		source string
		doc    []byte
		want   string
	}{
		"empty":            {"", nil, "empty document"},
		"white space":      {"", []byte("   \n\t\n"), "empty document"},
		"empty gzip":       {"", compressWith(t, nil, "gzip"), "empty document"},
		"garbage":          {"", []byte("<html><body>hello</body></html>"), "unrecognised format"},
		"wrong source":     {"debian", secdb("v3.18", "main", 10), "not a document of debian-tracker or debian-oval"},
		"unknown source":   {"gentoo", secdb("v3.18", "main", 10), `unknown source "gentoo"`},
		"truncated":        {"", secdb("v3.18", "main", 10)[:300], "alpine-secdb"},
		"truncated gzip":   {"", compressWith(t, secdb("v3.18", "main", 10), "gzip")[:100], "gzip: unexpected EOF"},
		"corrupt zstd":     {"", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xff}, 64)...), "zstd: "},
		"no scope (empty)": {"", []byte(`{"apkurl":"x","packages":[]}`), ""},
	} {
		_, err := Import(ctx, st, c.source, "doc", bytes.NewReader(c.doc), DefaultOptions())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", what, err, c.want)
		}
		if got := scopes(t, st); !reflect.DeepEqual(got, before) {
			t.Errorf("%s: stored scopes changed: %+v", what, got)
		}
	}
}

// TestImportShrink: a document shrinking its scope beyond MaxShrink, or
// emptying it, is refused with store.ErrShrunk and the old data kept.
func TestImportShrink(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	opt := DefaultOptions()
	if _, err := Import(ctx, st, "", "main.json", bytes.NewReader(secdb("v3.19", "community", 100)), opt); err != nil {
		t.Fatal(err)
	}
	before := scopes(t, st)
	for _, n := range []int{49, 1, 0} {
		_, err := Import(ctx, st, "", "main.json", bytes.NewReader(secdb("v3.19", "community", n)), opt)
		if !errors.Is(err, store.ErrShrunk) {
			t.Errorf("%d of 100: err = %v, want ErrShrunk", n, err)
		}
		if got := scopes(t, st); !reflect.DeepEqual(got, before) {
			t.Errorf("%d of 100: stored scopes changed: %+v", n, got)
		}
	}
	if sc, err := Import(ctx, st, "", "main.json", bytes.NewReader(secdb("v3.19", "community", 50)), opt); err != nil || sc.Advisories != 50 {
		t.Errorf("shrinking by exactly half: %+v, %v", sc, err)
	}
}
