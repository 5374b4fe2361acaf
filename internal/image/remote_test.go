package image

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry serves an in-process registry on 127.0.0.1, requiring basic
// auth as user:pass when auth is set.
func testRegistry(t *testing.T, auth bool) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); auth && (!ok || u != "user" || p != "pass") {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func randomImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkSame compares an opened image with what was pushed, and reads its
// layers (checking their diff IDs).
func checkSame(t *testing.T, got *Image, want v1.Image) {
	t.Helper()
	id, _ := want.ConfigName()
	md, _ := want.Digest()
	layers, _ := want.Layers()
	if got.Kind != KindRegistry || got.ID != id.String() || got.ManifestDigest != md.String() || len(got.Layers) != len(layers) {
		t.Fatalf("got %s %s %s %d layers; want %s %s %d", got.Kind, got.ID, got.ManifestDigest, len(got.Layers), id, md, len(layers))
	}
	for i, l := range layers {
		d, _ := l.Digest()
		diff, _ := l.DiffID()
		if got.Layers[i].Digest != d.String() || got.Layers[i].DiffID != diff.String() {
			t.Errorf("layer %d: %+v, want %s %s", i, got.Layers[i], d, diff)
		}
	}
	drain(t, got)
}

func TestRegistry(t *testing.T) {
	host := testRegistry(t, false)
	amd, arm := randomImage(t, "amd64"), randomImage(t, "arm64")
	tag := host + "/vigil/app:1"
	if err := remote.Write(parseRef(t, tag), amd); err != nil {
		t.Fatal(err)
	}
	checkSame(t, mustOpen(t, tag, Options{}), amd)
	md, _ := amd.Digest()
	checkSame(t, mustOpen(t, "registry:"+host+"/vigil/app@"+md.String(), Options{Insecure: true}), amd)

	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	multi := host + "/vigil/multi:latest"
	if err := remote.WriteIndex(parseRef(t, multi), idx); err != nil {
		t.Fatal(err)
	}
	checkSame(t, mustOpen(t, multi, Options{}), amd)
	checkSame(t, mustOpen(t, multi, Options{Platform: "linux/arm64"}), arm)
	if _, err := Open(context.Background(), multi, Options{Platform: "linux/s390x"}); err == nil || !strings.Contains(err.Error(), multi) {
		t.Errorf("unknown platform: err = %v", err)
	}
	if _, err := Open(context.Background(), host+"/vigil/none:1", Options{}); err == nil || !strings.Contains(err.Error(), "vigil/none:1") {
		t.Errorf("missing image: err = %v", err)
	}
}

func TestRegistryAuth(t *testing.T) {
	host := testRegistry(t, true)
	img := randomImage(t, "amd64")
	ref := host + "/private/app:1"
	basic := &authn.Basic{Username: "user", Password: "pass"}
	if err := remote.Write(parseRef(t, ref), img, remote.WithAuth(basic)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if _, err := Open(context.Background(), ref, Options{}); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Errorf("anonymous: err = %v", err)
	}
	cfg := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("user:pass")) + `"}}}`
	if err := os.WriteFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	checkSame(t, mustOpen(t, ref, Options{}), img)
}

func parseRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
