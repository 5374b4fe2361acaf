// Package demo writes a small, self-contained demonstration: a one-layer
// Debian 12 image (docker-save tarball) whose dpkg database holds a few
// packages at their bookworm release versions, and a Debian security
// tracker JSON document, in the upstream format, restating a few real
// tracker entries for those packages (a fixed one, an open "unimportant"
// one, a not-affected one). It lets `vigil demo` run the whole pipeline
// offline on a fresh clone. The data is an excerpt for demonstration, not a
// vulnerability database.
package demo

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Files are the paths Write produced.
type Files struct {
	Image string // docker-save tarball
	Feed  string // Debian security tracker JSON
}

const osRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`

// pkg is one dpkg status record of the demo image.
type pkg struct{ name, version, arch, source string }

var packages = []pkg{
	{"libc-bin", "2.36-9", "amd64", "glibc"},
	{"libc6", "2.36-9", "amd64", "glibc"},
	{"liblzma5", "5.4.1-0.2", "amd64", "xz-utils"},
	{"libssl3", "3.0.9-1", "amd64", "openssl"},
	{"openssl", "3.0.9-1", "amd64", ""},
	{"tar", "1.34+dfsg-1.2", "amd64", ""},
	{"xz-utils", "5.4.1-0.2", "amd64", ""},
	{"zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib"},
}

// tracker restates entries of security-tracker.debian.org's JSON (keyed by
// source package, then CVE, then release).
const tracker = `{
  "glibc": {
    "CVE-2023-4911": {
      "description": "A buffer overflow in the GNU C Library's dynamic loader ld.so while processing the GLIBC_TUNABLES environment variable (Looney Tunables).",
      "scope": "local",
      "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "2.36-9+deb12u4"}, "fixed_version": "2.36-9+deb12u3", "urgency": "high"}
      }
    }
  },
  "openssl": {
    "CVE-2023-5363": {
      "description": "Incorrect cipher key and IV length processing in OpenSSL 3.0 and 3.1.",
      "scope": "remote",
      "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.11-1~deb12u2"}, "fixed_version": "3.0.11-1~deb12u2", "urgency": "medium"}
      }
    }
  },
  "tar": {
    "CVE-2005-2541": {
      "description": "Tar 1.15.1 does not properly warn the user when extracting setuid or setgid files.",
      "scope": "local",
      "releases": {
        "bookworm": {"status": "open", "repositories": {"bookworm": "1.34+dfsg-1.2"}, "urgency": "unimportant"}
      }
    }
  },
  "xz-utils": {
    "CVE-2024-3094": {
      "description": "Malicious code in the upstream tarballs of xz 5.6.0 and 5.6.1.",
      "scope": "remote",
      "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "5.4.1-0.2"}, "fixed_version": "0", "urgency": "not yet assigned"}
      }
    }
  }
}
`

// Write writes the demo image and feed into dir.
func Write(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, err
	}
	f := Files{Image: filepath.Join(dir, "demo-debian12.docker.tar"), Feed: filepath.Join(dir, "debian-tracker-demo.json")}
	layerTar, err := rootfs()
	if err != nil {
		return Files{}, err
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(layerTar))
	if err != nil {
		return Files{}, err
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux", Created: v1.Time{Time: time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC)},
		RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Cmd: []string{"bash"}},
	})
	if err != nil {
		return Files{}, err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return Files{}, err
	}
	tag, err := name.NewTag("vigil.demo/debian:12.0")
	if err != nil {
		return Files{}, err
	}
	if err := tarball.WriteToFile(f.Image, tag, img); err != nil {
		return Files{}, fmt.Errorf("write demo image: %w", err)
	}
	if err := os.WriteFile(f.Feed, []byte(tracker), 0o644); err != nil {
		return Files{}, err
	}
	return f, nil
}

// rootfs builds the image's single layer.
func rootfs() ([]byte, error) {
	var status bytes.Buffer
	for _, p := range packages {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nArchitecture: %s\nVersion: %s\n", p.name, p.arch, p.version)
		if p.source != "" {
			fmt.Fprintf(&status, "Source: %s\n", p.source)
		}
		fmt.Fprintf(&status, "Description: demo package %s\n\n", p.name)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC)
	for _, d := range []string{"etc/", "usr/", "usr/lib/", "var/", "var/lib/", "var/lib/dpkg/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mod}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"usr/lib/os-release", []byte(osRelease)},
		{"etc/debian_version", []byte("12.0\n")},
		{"var/lib/dpkg/status", status.Bytes()},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data)), ModTime: mod}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/os-release", ModTime: mod}); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
