package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/vigil-scanner/vigil/internal/layer"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

type truth struct {
	ImageID        string `json:"image_id"`
	ManifestDigest string `json:"manifest_digest"`
	Outputs        map[string]struct {
		Path         string   `json:"path"`
		LayerDigests []string `json:"layer_digests"`
	} `json:"outputs"`
	Layers []struct {
		Digest           string `json:"digest"`
		DiffID           string `json:"diff_id"`
		MediaType        string `json:"media_type"`
		UncompressedSize int64  `json:"uncompressed_size"`
		CreatedBy        string `json:"created_by"`
	} `json:"layers"`
}

func readTruth(t testing.TB, name string) truth {
	t.Helper()
	b, err := os.ReadFile(testdata.Path(t, "images", name+".truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// drain reads every layer of img to the end, which checks its diff ID, and
// returns the uncompressed bytes read.
func drain(t *testing.T, img *Image) int64 {
	t.Helper()
	var total int64
	for i, l := range img.Layers {
		rc, err := l.Open()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		total += n
	}
	return total
}

func mustOpen(t *testing.T, ref string, opt Options) *Image {
	t.Helper()
	img, err := Open(context.Background(), ref, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := img.Close(); err != nil {
			t.Error(err)
		}
	})
	return img
}

func TestTruthImages(t *testing.T) {
	kinds := map[string]string{"docker-save": KindDockerArchive, "docker-save-uncompressed": KindOCIArchive, "oci-layout": KindOCIDir, "oci-archive": KindOCIArchive}
	for _, name := range []string{"debian12-layers", "debian12-minbase", "distroless-style", "go-binary", "node-app"} {
		tr := readTruth(t, name)
		for out, o := range tr.Outputs {
			t.Run(name+"/"+out, func(t *testing.T) {
				img := mustOpen(t, testdata.Path(t, "images", strings.TrimSuffix(o.Path, "/")), Options{})
				if img.Kind != kinds[out] || img.ID != tr.ImageID {
					t.Errorf("kind %s id %s; want %s %s", img.Kind, img.ID, kinds[out], tr.ImageID)
				}
				if (out == "oci-layout" || out == "oci-archive") && img.ManifestDigest != tr.ManifestDigest {
					t.Errorf("manifest digest %s, want %s", img.ManifestDigest, tr.ManifestDigest)
				}
				if len(img.Layers) != len(tr.Layers) {
					t.Fatalf("%d layers, want %d", len(img.Layers), len(tr.Layers))
				}
				var want int64
				for i, l := range img.Layers {
					tl := tr.Layers[i]
					digest := tl.Digest
					switch {
					case o.LayerDigests != nil:
						digest = o.LayerDigests[i]
					case out == "docker-save-uncompressed":
						digest = tl.DiffID
					}
					if l.DiffID != tl.DiffID || l.Digest != digest || l.CreatedBy != tl.CreatedBy {
						t.Errorf("layer %d: %+v; want diff ID %s digest %s created by %q", i, l, tl.DiffID, digest, tl.CreatedBy)
					}
					if strings.HasPrefix(out, "oci") && l.MediaType != tl.MediaType {
						t.Errorf("layer %d media type %s, want %s", i, l.MediaType, tl.MediaType)
					}
					want += tl.UncompressedSize
				}
				if got := drain(t, img); got != want {
					t.Errorf("read %d uncompressed bytes, want %d", got, want)
				}
			})
		}
	}
}

func TestDockerSave(t *testing.T) {
	for _, c := range []struct{ file, kind, diffID string }{
		{"alpine-3.10-2020-01.docker-save.tar.gz", KindDockerArchive, "sha256:531743b7098cb2aaf615641007a129173f63ed86ca32fe7b5a246a1c47286028"},
		{"alpine-3.11-2020-03.docker-save.tar.gz", KindDockerArchive, "sha256:beee9f30bc1f711043e78d4a2be0668955d4b761d587d6f60c2c8dc081efb203"},
		{"hello-world-v25.docker-save.tar", KindDockerArchive, "sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43"},
	} {
		t.Run(c.file, func(t *testing.T) {
			p := testdata.Path(t, "images", "docker-save", c.file)
			img := mustOpen(t, p, Options{})
			if img.Kind != c.kind || len(img.Layers) != 1 || img.Layers[0].DiffID != c.diffID {
				t.Fatalf("kind %s layers %+v; want %s, one layer %s", img.Kind, img.Layers, c.kind, c.diffID)
			}
			drain(t, img)
			forced := mustOpen(t, "docker-archive:"+p, Options{})
			if forced.Kind != KindDockerArchive || forced.ID != img.ID || forced.Layers[0].DiffID != c.diffID {
				t.Errorf("forced docker-archive: %s %s %+v", forced.Kind, forced.ID, forced.Layers)
			}
			drain(t, forced)
		})
	}
}

func TestOCILayoutIndex(t *testing.T) {
	dir := testdata.Path(t, "images", "oci-layout", "test_index")
	const one, two = "sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650", "sha256:32589985702551b6c56033bb3334432a0a513bf9d6aceda0f67c42b003850720"
	for tag, want := range map[string]string{"1": one, "2": two, "3": one, "4": one} {
		img := mustOpen(t, dir+":"+tag, Options{})
		if img.ManifestDigest != want || len(img.Layers) != 1 || img.Config.Architecture != "amd64" {
			t.Errorf("tag %s: manifest %s, %d layers; want %s", tag, img.ManifestDigest, len(img.Layers), want)
		}
	}
	expectErrors(t, map[string]string{
		dir:                     "2 images match platform linux/amd64; choose one with PATH:TAG",
		dir + ":nope":           `no image named "nope"`,
		"oci-dir:" + dir + ":1": "",
	})
	if _, err := Open(context.Background(), dir+":1", Options{Platform: "linux/arm64"}); err == nil || !strings.Contains(err.Error(), "no image for platform linux/arm64 (the index has linux/amd64)") {
		t.Errorf("arm64: err = %v", err)
	}
	img := mustOpen(t, testdata.Path(t, "images", "oci-layout", "test_index_one_image"), Options{})
	if img.Kind != KindOCIDir || len(img.Layers) != 1 || img.Layers[0].DiffID != "sha256:59cd31f50f7442a662d7c31b7a12079ade16892bfb465b33da49918e7d13e747" {
		t.Errorf("one image: %+v", img)
	}
	drain(t, img)
}

func TestRootfsArchive(t *testing.T) {
	p := testdata.Path(t, "images", "alpine-minirootfs", "alpine-minirootfs-3.20.3-x86_64.tar.gz")
	img := mustOpen(t, p, Options{})
	if img.Kind != KindRootfsArchive || len(img.Layers) != 1 || img.Config != nil {
		t.Fatalf("%+v", img)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(f, raw))
	if err != nil {
		t.Fatal(err)
	}
	u := sha256.New()
	if _, err := io.Copy(u, zr); err != nil {
		t.Fatal(err)
	}
	l := img.Layers[0]
	if want := "sha256:" + hex.EncodeToString(u.Sum(nil)); l.DiffID != want {
		t.Errorf("diff ID %s, want %s", l.DiffID, want)
	}
	if want := "sha256:" + hex.EncodeToString(raw.Sum(nil)); l.Digest != want {
		t.Errorf("digest %s, want %s", l.Digest, want)
	}
	files := readFiles(t, l, "etc/os-release", "etc/alpine-release")
	if files["etc/alpine-release"] != "3.20.3\n" || !strings.Contains(files["etc/os-release"], "VERSION_ID=3.20.3") {
		t.Errorf("files %q", files)
	}
}

// readFiles reads l with layer.Read and returns the wanted files, with each
// link at a wanted path as "-> target".
func readFiles(t *testing.T, l Layer, patterns ...string) map[string]string {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	ch, err := layer.Read(context.Background(), rc, layer.NewSelector(patterns), layer.DefaultLimits(), func(p string, r io.Reader) error {
		b, err := io.ReadAll(r)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, target := range ch.Links {
		files[p] = "-> " + target
	}
	return files
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	for name, body := range map[string]string{"etc/os-release": "ID=test\n", "usr/lib/os-release": "ID=lib\n", outside: "SECRET"} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"etc/issue": outside, "etc/lib": "../usr/lib", "etc/escape": "../../../../"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "etc", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{dir, "dir:" + dir} {
		img := mustOpen(t, ref, Options{})
		if img.Kind != KindDir || len(img.Layers) != 1 || img.Layers[0].DiffID != "" {
			t.Fatalf("%+v", img)
		}
		files := readFiles(t, img.Layers[0], "etc/*", "etc/lib/*", "etc/escape/*")
		want := map[string]string{"etc/os-release": "ID=test\n", "etc/issue": "-> " + outside, "etc/lib": "-> ../usr/lib", "etc/escape": "-> ../../../../"}
		if len(files) != len(want) {
			t.Errorf("files %q, want %q", files, want)
		}
		for k, v := range want {
			if files[k] != v {
				t.Errorf("%s = %q, want %q", k, files[k], v)
			}
		}
	}
	// A consumer that stops early closes the pipe; the writer must stop.
	img := mustOpen(t, dir, Options{})
	rc, err := img.Layers[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeTar writes a tar file of the given members.
func writeTar(t *testing.T, path string, members map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range members {
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(body)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dockerArchive writes a docker-save archive of one layer blob whose
// config claims diffID.
func dockerArchive(t *testing.T, blob []byte, diffID string) string {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID + `"]}}`)
	p := filepath.Join(t.TempDir(), "image.tar")
	writeTar(t, p, map[string][]byte{
		"manifest.json": []byte(`[{"Config":"config.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]`),
		"config.json":   cfg,
		"l/layer.tar":   blob,
	})
	return p
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLayerChecks(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	zeros := make([]byte, 4<<20)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Size: int64(len(zeros)), Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Write(zeros)
	tw.Close()
	layerTar := tb.Bytes()
	sum := sha256.Sum256(layerTar)
	good := "sha256:" + hex.EncodeToString(sum[:])

	readErr := func(p string, opt Options) error {
		img := mustOpen(t, p, opt)
		rc, err := img.Layers[0].Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}
	if err := readErr(dockerArchive(t, layerTar, good), Options{}); err != nil {
		t.Errorf("good layer: %v", err)
	}
	bad := "sha256:" + strings.Repeat("0", 64)
	if err := readErr(dockerArchive(t, layerTar, bad), Options{}); err == nil || !strings.Contains(err.Error(), "l/layer.tar): uncompressed content has digest "+good+", but the image config says "+bad) {
		t.Errorf("wrong diff ID: err = %v", err)
	}
	if err := readErr(dockerArchive(t, gzipped(t, layerTar), good), Options{MaxRatio: 10}); err == nil || !strings.Contains(err.Error(), "decompression ratio") {
		t.Errorf("ratio: err = %v", err)
	}
	if err := readErr(dockerArchive(t, gzipped(t, layerTar), good), Options{}); err != nil {
		t.Errorf("gzip layer: %v", err)
	}
	if err := readErr(dockerArchive(t, layerTar, good), Options{MaxLayerSize: 1 << 20}); err == nil || !strings.Contains(err.Error(), "exceeds 1048576 bytes") {
		t.Errorf("size: err = %v", err)
	}
	// The same archive gzipped is spilled to a bounded temporary file.
	gz := filepath.Join(t.TempDir(), "image.tar.gz")
	plain, err := os.ReadFile(dockerArchive(t, layerTar, good))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gz, gzipped(t, plain), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := readErr(gz, Options{}); err != nil {
		t.Errorf("gzipped archive: %v", err)
	}
	if _, err := Open(context.Background(), gz, Options{MaxSpill: 1 << 20}); err == nil || !strings.Contains(err.Error(), "MaxSpill") {
		t.Errorf("spill bound: err = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tmp := t.TempDir()
	junk := filepath.Join(tmp, "junk.bin")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a tar "), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	xz := filepath.Join(tmp, "x.tar.xz")
	if err := os.WriteFile(xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	noManifest := filepath.Join(tmp, "nomanifest.tar")
	writeTar(t, noManifest, map[string][]byte{"etc/os-release": []byte("ID=x")})
	expectErrors(t, map[string]string{
		filepath.Join(tmp, "missing.tar"):   "no such file",
		"./missing":                         "no such file",
		junk:                                "reading tar",
		xz:                                  "xz compression are not supported",
		"oci-dir:" + tmp:                    "index.json",
		"oci-dir:" + junk:                   "is a file, not a directory",
		"docker-archive:" + tmp:             "is a directory",
		"docker-archive:" + noManifest:      "manifest.json",
		"oci-archive:" + noManifest:         "index.json",
		"registry:Not/A/Valid:Reference:":   "not an image reference",
		"dir:" + filepath.Join(tmp, "none"): "no such file",
		noManifest + ":sometag":             "", // a rootfs archive ignores tags
	})
	if _, err := Open(context.Background(), noManifest, Options{Platform: "linux/"}); err != nil {
		t.Errorf("platform is not used by root filesystems: %v", err)
	}
	if _, err := Open(context.Background(), testdata.Path(t, "images", "node-app.oci"), Options{Platform: "lin ux"}); err == nil || !strings.Contains(err.Error(), "platform") {
		t.Errorf("bad platform: err = %v", err)
	}
}

// BenchmarkOpenRead opens debian12-minbase.docker.tar and reads its layer
// for a scanner's small wanted set: gunzip, diff ID check and tar reading.
func BenchmarkOpenRead(b *testing.B) {
	tr := readTruth(b, "debian12-minbase")
	p := testdata.Path(b, "images", "debian12-minbase.docker.tar")
	sel := layer.NewSelector([]string{"etc/os-release", "usr/lib/os-release", "etc/debian_version", "var/lib/dpkg/status", "var/lib/dpkg/status.d/*", "lib/apk/db/installed", "var/lib/rpm/rpmdb.sqlite"})
	var size int64
	for _, l := range tr.Layers {
		size += l.UncompressedSize
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		img, err := Open(context.Background(), p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range img.Layers {
			rc, err := l.Open()
			if err != nil {
				b.Fatal(err)
			}
			_, err = layer.Read(context.Background(), rc, sel, layer.DefaultLimits(), func(string, io.Reader) error { return nil })
			rc.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		img.Close()
	}
}

// expectErrors opens each ref and checks that the error names the ref and
// says msg, or that there is no error when msg is "".
func expectErrors(t *testing.T, cases map[string]string) {
	t.Helper()
	for ref, msg := range cases {
		img, err := Open(context.Background(), ref, Options{})
		switch {
		case msg == "" && err != nil:
			t.Errorf("%s: %v", ref, err)
		case msg == "":
			img.Close()
		case err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), ref):
			t.Errorf("%s: err = %v, want %q", ref, err, msg)
		}
	}
}
