package detect

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// seedFixtures adds to f every shared osrelease fixture file whose name
// satisfies keep, and the os-release section of the claircore txtars.
func seedFixtures(f *testing.F, keep func(name string) bool) {
	root := testdata.Path(f, "osrelease")
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch name := filepath.Base(p); {
		case strings.HasSuffix(name, ".txtar"):
			if keep("os-release") {
				f.Add(txtar(data)["os-release"])
			}
		case keep(name) || keep(filepath.Base(filepath.Dir(p))):
			f.Add(data)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

// quote writes v so that parseKeyValues reads it back: single quotes, with
// each ' written '\”.
func quote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// FuzzParseKeyValues: what parses re-parses to the same map once written
// back quoted, and Detect agrees with the parse.
func FuzzParseKeyValues(f *testing.F) {
	seedFixtures(f, func(name string) bool {
		return name == "os-release" || name == "lsb-release" || name == "release"
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, err := parseKeyValues(data)
		d, ok, derr := Detect(fstest.MapFS{osRel: {Data: data}})
		if (err == nil) != (derr == nil) {
			t.Fatalf("parse error %v, Detect error %v", err, derr)
		}
		if err != nil {
			return
		}
		if ok != (kv["ID"] != "") || d.ID != kv["ID"] {
			t.Fatalf("Detect = %+v, %v for ID %q", d, ok, kv["ID"])
		}
		var b strings.Builder
		for k, v := range kv {
			if !isShellName(k) {
				t.Fatalf("key %q", k)
			}
			b.WriteString(k + "=" + quote(v) + "\n")
		}
		again, err := parseKeyValues([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if !reflect.DeepEqual(kv, again) {
			t.Fatalf("re-parse = %q, want %q", again, kv)
		}
	})
}

// FuzzLSBRelease: an lsb-release identity has a lowercase, blank-free ID and
// a version starting with a digit.
func FuzzLSBRelease(f *testing.F) {
	seedFixtures(f, func(name string) bool { return name == "lsb-release" })
	f.Add([]byte("DISTRIB_ID=\"Linux Mint\"\nDISTRIB_RELEASE=n/a\nDISTRIB_CODENAME=n/a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, err := parseKeyValues(data)
		if err != nil {
			return
		}
		d, ok := lsbDistribution(kv)
		if !ok {
			return
		}
		if d.ID == "" || d.ID != strings.ToLower(d.ID) || strings.ContainsFunc(d.ID, func(r rune) bool { return strings.ContainsRune(" \t\n\r\v\f", r) }) {
			t.Fatalf("ID %q", d.ID)
		}
		if d.VersionID != "" && (d.VersionID[0] < '0' || d.VersionID[0] > '9') {
			t.Fatalf("VersionID %q", d.VersionID)
		}
	})
}

// FuzzAptSources: both formats give entries with a blank-free URI and suite;
// the release picked is one of the entries' own.
func FuzzAptSources(f *testing.F) {
	for _, s := range []string{
		"deb http://deb.debian.org/debian bookworm main\ndeb-src http://deb.debian.org/debian-security bookworm-security main\n",
		"deb [ arch=amd64 signed-by=/k.gpg ] http://security.debian.org buster/updates main # c\n",
		"deb [arch=amd64] https://download.docker.com/linux/ubuntu jammy stable\n",
		"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
		"types: deb deb-src\nEnabled: no\nURIs: a b\nSuites: sid\n\nTypes: deb\nURIs: x\nSuites: testing\n",
		ubuntuNobleSources,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) ([]aptEntry, error){parseSourcesList, parseDeb822Sources} {
			entries, err := parse(data)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if e.uri == "" || e.suite == "" || strings.ContainsAny(e.uri+e.suite, " \t\n") {
					t.Fatalf("entry %+v", e)
				}
			}
			if e, id, _, ok := primarySuite(entries); ok && (!slices.Contains(entries, e) || (id != "debian" && id != "ubuntu")) {
				t.Fatalf("primarySuite = %+v %q", e, id)
			}
		}
	})
}

// FuzzReleaseFiles: alpine-release, debian_version and Red Hat style release
// files give a known ID with a version (or, for debian_version, a codename),
// and Detect names a namespace for every one of them.
func FuzzReleaseFiles(f *testing.F) {
	seedFixtures(f, func(name string) bool {
		return strings.HasSuffix(name, "-release") && name != "os-release" && name != "lsb-release" ||
			name == "debian_version"
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tc := range []struct {
			file  string
			parse func([]byte) (model.Distribution, bool)
		}{
			{"etc/alpine-release", parseAlpineRelease},
			{"etc/debian_version", parseDebianVersion},
			{"etc/redhat-release", parseRHRelease},
		} {
			d, ok := tc.parse(data)
			if !ok {
				continue
			}
			if d.ID == "" || d.VersionID == "" && d.VersionCodename == "" {
				t.Fatalf("%s: %+v", tc.file, d)
			}
			got, ok, err := Detect(fstest.MapFS{tc.file: {Data: data}})
			if err != nil || !ok || got.ID != d.ID || got.Namespace == "" {
				t.Fatalf("%s: Detect = %+v, %v, %v", tc.file, got, ok, err)
			}
		}
	})
}
