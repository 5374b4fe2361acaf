package scan_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// writeRootfs writes a gzipped root filesystem tarball holding files
// (path → contents) and symlinks (path → target), and returns its path.
func writeRootfs(t *testing.T, files, links map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, name := range slices.Sorted(maps.Keys(links)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: links[name], Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// ubuntuRootfs is an Ubuntu root filesystem: the release files of an
// osrelease/ fixture directory (etc/os-release linked to
// usr/lib/os-release when only the latter is there, as debootstrap does)
// and a dpkg status file.
func ubuntuRootfs(t *testing.T, release, status string) string {
	t.Helper()
	dir := testdata.Path(t, "osrelease", release)
	files := map[string]string{"var/lib/dpkg/status": status}
	links := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["etc/os-release"]; !ok {
		if _, ok := files["usr/lib/os-release"]; ok {
			links["etc/os-release"] = "../usr/lib/os-release"
		}
	}
	return writeRootfs(t, files, links)
}

// dpkgStatus writes a status file: one installed package per "name
// version [source]" entry, amd64.
func dpkgStatus(entries ...string) string {
	var b strings.Builder
	for _, e := range entries {
		f := strings.Fields(e)
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n", f[0], f[1])
		if len(f) > 2 {
			fmt.Fprintf(&b, "Source: %s\n", f[2])
		}
		b.WriteString("Description: test package\n\n")
	}
	return b.String()
}

// setVersion rewrites the Version of package name in a status file.
func setVersion(t *testing.T, status, name, version string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(Package: ` + regexp.QuoteMeta(name) + `\n(?:[^\n]+\n)*?Version: )[^\n]+`)
	if !re.MatchString(status) {
		t.Fatalf("status has no Version for %s", name)
	}
	return re.ReplaceAllString(status, "${1}"+version)
}

// scanLines scans ref against st and renders its findings as "package
// version id state fixed", checking the namespace of the image and that
// every finding comes from ubuntu-oval data of that namespace.
func scanLines(t *testing.T, st *store.Store, ref, ns string) []string {
	t.Helper()
	rep, _, err := scan.New(st, nil).Scan(context.Background(), ref, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Distribution == nil || rep.Distribution.Namespace != ns {
		t.Fatalf("distribution %+v, want namespace %s", rep.Distribution, ns)
	}
	if len(rep.Warnings) > 0 {
		t.Errorf("warnings: %q", rep.Warnings)
	}
	var out []string
	for _, v := range rep.Vulnerabilities {
		if v.DataSource != "ubuntu-oval" || v.Namespace != ns {
			t.Errorf("%s %s: from %s %s, want ubuntu-oval %s", v.Package, v.ID, v.DataSource, v.Namespace, ns)
		}
		out = append(out, strings.TrimSpace(strings.Join([]string{v.Package, v.InstalledVersion, v.ID, v.State, v.FixedVersion}, " ")))
	}
	return out
}

func checkLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestUbuntuNobleUSN scans the real Ubuntu 24.04 GA debootstrap (as a root
// filesystem) against the whole noble USN OVAL of 2024-12-24. The expected
// rows were computed independently of vigil: the OVAL evaluated by a
// separate script (dpkginfo tests only; kernel tests skipped) with
// `dpkg --compare-versions` as comparator. Then the same image with
// libssl3t64 upgraded to its last fix and libc6 to the first of its two.
func TestUbuntuNobleUSN(t *testing.T) {
	st := newStore(t, "ubuntu", "vulndata/ubuntu-oval/whole-normalized/com.ubuntu.noble.usn.oval.xml.gz")
	b, err := os.ReadFile(testdata.Path(t, "pkgdb", "dpkg", "ubuntu-24.04-noble-debootstrap", "var", "lib", "dpkg", "status"))
	if err != nil {
		t.Fatal(err)
	}
	status := string(b)
	checkLines(t, "debootstrap", scanLines(t, st, ubuntuRootfs(t, "ubuntu-debootstrap/24.04", status), "ubuntu:24.04"), []string{
		"libc-bin 2.39-0ubuntu8 USN-6737-2 fixed 2.39-0ubuntu8.1",
		"libc-bin 2.39-0ubuntu8 USN-6804-1 fixed 2.39-0ubuntu8.2",
		"libc6 2.39-0ubuntu8 USN-6737-2 fixed 2.39-0ubuntu8.1",
		"libc6 2.39-0ubuntu8 USN-6804-1 fixed 2.39-0ubuntu8.2",
		"libgnutls30t64 3.8.3-1.1ubuntu3 USN-6733-2 fixed 3.8.3-1.1ubuntu3.1",
		"libssl3t64 3.0.13-0ubuntu3 USN-6663-3 fixed 3.0.13-0ubuntu3.1",
		"libssl3t64 3.0.13-0ubuntu3 USN-6937-1 fixed 3.0.13-0ubuntu3.2",
		"libssl3t64 3.0.13-0ubuntu3 USN-6986-1 fixed 3.0.13-0ubuntu3.4",
	})
	status = setVersion(t, status, "libssl3t64", "3.0.13-0ubuntu3.4")
	status = setVersion(t, status, "libc6", "2.39-0ubuntu8.1")
	checkLines(t, "upgraded", scanLines(t, st, ubuntuRootfs(t, "ubuntu-debootstrap/24.04", status), "ubuntu:24.04"), []string{
		"libc-bin 2.39-0ubuntu8 USN-6737-2 fixed 2.39-0ubuntu8.1",
		"libc-bin 2.39-0ubuntu8 USN-6804-1 fixed 2.39-0ubuntu8.2",
		"libc6 2.39-0ubuntu8.1 USN-6804-1 fixed 2.39-0ubuntu8.2",
		"libgnutls30t64 3.8.3-1.1ubuntu3 USN-6733-2 fixed 3.8.3-1.1ubuntu3.1",
	})
}

// TestUbuntuJammyUSN scans a small Ubuntu 22.04 image against the whole
// jammy USN OVAL of 2023-10-09 (expected rows computed as for noble).
func TestUbuntuJammyUSN(t *testing.T) {
	st := newStore(t, "ubuntu", "vulndata/ubuntu-oval/whole-normalized/com.ubuntu.jammy.usn.oval.xml.gz")
	status := dpkgStatus(
		"libssl3 3.0.2-0ubuntu1.8 openssl",        // fixed for USN-5844-1, not the two after
		"openssl 3.0.2-0ubuntu1.10",               // the last fix
		"curl 7.81.0-1ubuntu1.10",                 // the fix of USN-5964-1 exactly
		"libcurl4 7.81.0-1ubuntu1.13 curl",        // the last fix
		"zlib1g 1:1.2.11.dfsg-2ubuntu9 zlib",      // older, with an epoch
		"tar 1.34+dfsg-1ubuntu0.1.22.04.1",        // the fix
		"libc6 2.35-0ubuntu3.1 glibc",             // older
		"hello 2.10-2ubuntu4",                     // in no notice
		"libssl-dev 3.0.2-0ubuntu1.9 not-openssl", // binary name decides, not the source
	)
	checkLines(t, "jammy", scanLines(t, st, ubuntuRootfs(t, "ubuntu/22.04", status), "ubuntu:22.04"), []string{
		"curl 7.81.0-1ubuntu1.10 USN-6237-1 fixed 7.81.0-1ubuntu1.11",
		"curl 7.81.0-1ubuntu1.10 USN-6237-2 fixed 7.81.0-1ubuntu1.13",
		"libc6 2.35-0ubuntu3.1 USN-6409-1 fixed 2.35-0ubuntu3.4",
		"libssl-dev 3.0.2-0ubuntu1.9 USN-6119-1 fixed 3.0.2-0ubuntu1.10",
		"libssl3 3.0.2-0ubuntu1.8 USN-6039-1 fixed 3.0.2-0ubuntu1.9",
		"libssl3 3.0.2-0ubuntu1.8 USN-6119-1 fixed 3.0.2-0ubuntu1.10",
		"zlib1g 1:1.2.11.dfsg-2ubuntu9 USN-5570-2 fixed 1:1.2.11.dfsg-2ubuntu9.2",
	})
}

// TestUbuntuOVALFixtures checks each other kind of Ubuntu OVAL document —
// classic CVE OVAL, and the OCI CVE, USN and package OVAL — with an image
// holding an affected and a fixed version of packages it names, and a Pro
// (fips-updates) document against a plain image, which it must not touch.
func TestUbuntuOVALFixtures(t *testing.T) {
	jammy := dpkgStatus(
		"openssh-client 1:8.9p1-3ubuntu0.4 openssh", // older
		"openssh-server 1:8.9p1-3ubuntu0.5 openssh", // the fix
		"libssh-4 0.9.6-2ubuntu0.22.04.1 libssh",    // older
		"libssh-dev 0.9.6-2ubuntu0.22.04.2 libssh",  // the fix
	)
	for _, tc := range []struct {
		doc, release, ns, status string
		want                     []string
	}{
		{"clair-v2-xenial-cve-oval-subset.xml", "ubuntu/16.04", "ubuntu:16.04", dpkgStatus(
			"cabextract 1.6-1",           // affected, no fix
			"libmspack0 0.4-2 libmspack", // older than 0.4-3
		), []string{
			"cabextract 1.6-1 CVE-2015-4471 unfixed",
			"libmspack0 0.4-2 CVE-2015-4471 fixed 0.4-3",
		}},
		{"clair-v2-xenial-cve-oval-subset.xml", "ubuntu/16.04", "ubuntu:16.04", dpkgStatus(
			"libmspack0 0.4-3 libmspack", // the fix
		), nil},
		{"oci.com.ubuntu.jammy.cve.oval.xml.bz2", "ubuntu/22.04", "ubuntu:22.04", jammy, []string{
			"libssh-4 0.9.6-2ubuntu0.22.04.1 CVE-2023-48795 fixed 0.9.6-2ubuntu0.22.04.2",
			"openssh-client 1:8.9p1-3ubuntu0.4 CVE-2023-48795 fixed 1:8.9p1-3ubuntu0.5",
		}},
		{"oci.com.ubuntu.jammy.pkg.oval.xml.bz2", "ubuntu/22.04", "ubuntu:22.04", jammy, []string{
			"libssh-4 0.9.6-2ubuntu0.22.04.1 CVE-2023-48795 fixed 0.9.6-2ubuntu0.22.04.2",
			"openssh-client 1:8.9p1-3ubuntu0.4 CVE-2023-48795 fixed 1:8.9p1-3ubuntu0.5",
		}},
		{"oci.com.ubuntu.jammy.usn.oval.xml.bz2", "ubuntu/22.04", "ubuntu:22.04", jammy, []string{
			"libssh-4 0.9.6-2ubuntu0.22.04.1 USN-6561-1 fixed 0.9.6-2ubuntu0.22.04.2",
		}},
		{"oci.com.ubuntu.fips-updates_jammy.cve.oval.xml.bz2", "ubuntu/22.04", "ubuntu:22.04", jammy, nil},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			st := newStore(t, "ubuntu", "vulndata/ubuntu-oval/fixtures/"+tc.doc)
			checkLines(t, tc.doc, scanLines(t, st, ubuntuRootfs(t, tc.release, tc.status), tc.ns), tc.want)
		})
	}
}

// TestUbuntuProNamespace checks that the fips-updates document is stored
// under its own namespace, so a Pro image (whose namespace says so) gets it.
func TestUbuntuProNamespace(t *testing.T) {
	st := newStore(t, "ubuntu", "vulndata/ubuntu-oval/fixtures/oci.com.ubuntu.fips-updates_jammy.cve.oval.xml.bz2")
	pkgs := []model.Package{{Kind: model.KindDpkg, Name: "openssh-client", Version: "1:8.9p1-3ubuntu0.4", Arch: "amd64", SourceName: "openssh", SourceVersion: "1:8.9p1-3ubuntu0.4"}}
	var got []string
	for _, f := range matchClean(t, st, &model.Distribution{Namespace: "ubuntu:22.04/fips-updates"}, pkgs) {
		got = append(got, f.Package.Name+" "+f.Advisory.ID+" "+f.Advisory.FixedVersion)
	}
	checkLines(t, "fips-updates", got, []string{"openssh-client CVE-2023-48795 1:8.9p1-3ubuntu0.5"})
}
