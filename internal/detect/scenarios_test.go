package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// image builds an image root from path → content.
func image(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, s := range files {
		m[p] = &fstest.MapFile{Data: []byte(s)}
	}
	return m
}

const (
	sourcesList  = "etc/apt/sources.list"
	debianSource = "etc/apt/sources.list.d/debian.sources"
	ubuntuSource = "etc/apt/sources.list.d/ubuntu.sources"
	debVersion   = "etc/debian_version"
	// debianTesting is the os-release of Debian testing (and unstable): no
	// VERSION_ID.
	debianTesting = `PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
`
	// ubuntuNobleSources is the deb822 file of Ubuntu 24.04 images, with an
	// embedded key and a disabled stanza added.
	ubuntuNobleSources = `# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources
Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main universe restricted multiverse
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFufwdoBEADv/Gxytx/LcSXYuM0MwKojbBye81s0G1nEx+lz6VAUpIUZnbkq
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main universe restricted multiverse

Types: deb
Enabled: no
URIs: http://archive.ubuntu.com/ubuntu/
Suites: questing
`
)

func TestScenarios(t *testing.T) {
	for _, tc := range []struct {
		name                            string
		files                           map[string]string
		none                            bool
		id, version, codename, ns, from string
	}{
		{name: "scratch image", files: map[string]string{"bin/app": "x"}, none: true},
		{name: "empty os-release", files: map[string]string{osRel: ""}, none: true},
		{name: "os-release without ID falls through", files: map[string]string{osRel: "NAME=x\n", "etc/alpine-release": "3.19.1\n"},
			id: "alpine", version: "3.19.1", ns: "alpine:v3.19", from: "etc/alpine-release"},
		{name: "version lent only by a source naming the same ID", files: map[string]string{osRel: "ID=alpine\n", lsbRel: "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n", "etc/alpine-release": "3.19.1\n"},
			id: "alpine", version: "3.19.1", ns: "alpine:v3.19", from: osRel},
		{name: "old openSUSE ID outside Leap", files: map[string]string{osRel: "NAME=openSUSE\nVERSION_ID=\"13.2\"\nID=opensuse\n"},
			id: "opensuse", version: "13.2", ns: "opensuse:13.2", from: osRel},
		{name: "etc/os-release shadows usr/lib/os-release", files: map[string]string{osRel: "ID=alpine\nVERSION_ID=3.18.0", usrRel: "ID=debian\nVERSION_ID=12"},
			id: "alpine", version: "3.18.0", ns: "alpine:v3.18", from: osRel},
		{name: "alpine os-release without VERSION_ID borrows alpine-release", files: map[string]string{osRel: "ID=alpine\n", "etc/alpine-release": "3.11.5\n"},
			id: "alpine", version: "3.11.5", ns: "alpine:v3.11", from: osRel},
		{name: "lsb-release of another distribution", files: map[string]string{lsbRel: "DISTRIB_ID=LinuxMint\nDISTRIB_RELEASE=21.2\nDISTRIB_CODENAME=victoria\n"},
			id: "linuxmint", version: "21.2", codename: "victoria", ns: "linuxmint:21.2", from: lsbRel},
		{name: "lsb-release without codename", files: map[string]string{lsbRel: "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n"},
			id: "ubuntu", version: "22.04", codename: "jammy", ns: "ubuntu:22.04", from: lsbRel},
		{name: "lsb-release release n/a", files: map[string]string{lsbRel: "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=n/a\nDISTRIB_CODENAME=noble\n"},
			id: "ubuntu", version: "24.04", codename: "noble", ns: "ubuntu:24.04", from: lsbRel},

		// apt sources only.
		{name: "one-line sources", files: map[string]string{sourcesList: "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\n"},
			id: "debian", version: "12", codename: "bookworm", ns: "debian:12", from: sourcesList},
		{name: "one-line sources, old security suite and options", files: map[string]string{sourcesList: "# comment\n\ndeb [ arch=amd64 signed-by=/k.gpg ] http://security.debian.org buster/updates main # c\n"},
			id: "debian", version: "10", codename: "buster", ns: "debian:10", from: sourcesList},
		{name: "deb-src counts, tabs separate", files: map[string]string{sourcesList: "deb-src\thttp://archive.ubuntu.com/ubuntu\tfocal main\n"},
			id: "ubuntu", version: "20.04", codename: "focal", ns: "ubuntu:20.04", from: sourcesList},
		{name: "deb822 Debian", files: map[string]string{debianSource: "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"},
			id: "debian", version: "12", codename: "bookworm", ns: "debian:12", from: debianSource},
		{name: "deb822 Ubuntu with key and disabled stanza", files: map[string]string{ubuntuSource: ubuntuNobleSources},
			id: "ubuntu", version: "24.04", codename: "noble", ns: "ubuntu:24.04", from: ubuntuSource},
		{name: "deb822 field names ignore case", files: map[string]string{debianSource: "types: deb\nuris: http://deb.debian.org/debian\nSUITES: bullseye\n"},
			id: "debian", version: "11", codename: "bullseye", ns: "debian:11", from: debianSource},
		{name: "official archive wins over a third-party repository listed first", files: map[string]string{
			"etc/apt/sources.list.d/docker.list": "deb [arch=amd64] https://download.docker.com/linux/ubuntu jammy stable\n",
			ubuntuSource:                         ubuntuNobleSources,
		}, id: "ubuntu", version: "24.04", codename: "noble", ns: "ubuntu:24.04", from: ubuntuSource},
		{name: "a mirror alone still names the release", files: map[string]string{sourcesList: "deb http://mirror.example.com/debian bullseye main\n"},
			id: "debian", version: "11", codename: "bullseye", ns: "debian:11", from: sourcesList},
		{name: "unstable suite", files: map[string]string{sourcesList: "deb http://deb.debian.org/debian sid main\n"},
			id: "debian", codename: "sid", ns: "debian:unstable", from: sourcesList},
		{name: "testing suite with debian_version", files: map[string]string{debianSource: "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: testing testing-updates\n", debVersion: "trixie/sid\n"},
			id: "debian", version: "13", codename: "trixie", ns: "debian:13", from: debianSource},
		{name: "testing suite alone", files: map[string]string{sourcesList: "deb http://deb.debian.org/debian testing main\n"},
			id: "debian", ns: "debian:unstable", from: sourcesList},
		{name: "stable alias is not a release", files: map[string]string{sourcesList: "deb http://deb.debian.org/debian stable main\n"}, none: true},
		{name: "sources in other files are ignored", files: map[string]string{"etc/apt/sources.list.d/x.list.save": "deb http://deb.debian.org/debian bookworm main\n"}, none: true},

		// Debian testing and unstable: os-release without VERSION_ID.
		{name: "testing os-release alone", files: map[string]string{osRel: debianTesting, debVersion: "trixie/sid\n"},
			id: "debian", codename: "trixie", ns: "debian:unstable", from: osRel},
		{name: "testing os-release with trixie sources", files: map[string]string{osRel: debianTesting, debianSource: "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\n"},
			id: "debian", version: "13", codename: "trixie", ns: "debian:13", from: osRel},
		{name: "testing os-release with sid sources", files: map[string]string{osRel: debianTesting, debianSource: "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\n", debVersion: "trixie/sid\n"},
			id: "debian", codename: "trixie", ns: "debian:unstable", from: osRel},
		{name: "Ubuntu os-release ignores debian_version", files: map[string]string{osRel: "ID=ubuntu\nVERSION_ID=\"24.04\"\n", debVersion: "trixie/sid\n"},
			id: "ubuntu", version: "24.04", codename: "noble", ns: "ubuntu:24.04", from: osRel},
		{name: "Debian os-release ignores Ubuntu sources", files: map[string]string{osRel: debianTesting, sourcesList: "deb http://archive.ubuntu.com/ubuntu jammy main\n"},
			id: "debian", codename: "trixie", ns: "debian:unstable", from: osRel},
		{name: "Debian 7 codename from VERSION text", files: map[string]string{osRel: "ID=debian\nVERSION_ID=\"7\"\nVERSION=\"7 (wheezy)\"\n"},
			id: "debian", version: "7", codename: "wheezy", ns: "debian:7", from: osRel},
		{name: "codename from VERSION text beyond the table", files: map[string]string{osRel: "ID=debian\nVERSION_ID=\"99\"\nVERSION=\"99 (zebra)\"\n"},
			id: "debian", version: "99", codename: "zebra", ns: "debian:99", from: osRel},

		// Red Hat style release files.
		{name: "centos-release through redhat-release", files: map[string]string{"etc/redhat-release": "CentOS Linux release 8.4.2105\n"},
			id: "centos", version: "8.4.2105", ns: "centos:8", from: "etc/redhat-release"},
		{name: "CentOS Stream release file", files: map[string]string{"etc/centos-release": "CentOS Stream release 9\n"},
			id: "centos", version: "9", ns: "centos-stream:9", from: "etc/centos-release"},
		{name: "Amazon Linux 2", files: map[string]string{"etc/system-release": "Amazon Linux release 2 (Karoo)\n"},
			id: "amzn", version: "2", ns: "amzn:2", from: "etc/system-release"},
		{name: "Amazon Linux 2023", files: map[string]string{"etc/system-release": "Amazon Linux release 2023.3.20240131 (Amazon Linux)\n"},
			id: "amzn", version: "2023.3.20240131", ns: "amzn:2023", from: "etc/system-release"},
		{name: "Amazon Linux AMI", files: map[string]string{"etc/system-release": "Amazon Linux AMI release 2018.03\n"},
			id: "amzn", version: "2018.03", ns: "amzn:2018.03", from: "etc/system-release"},
		{name: "Amazon Linux os-release", files: map[string]string{osRel: "ID=\"amzn\"\nVERSION_ID=\"2023\"\n"},
			id: "amzn", version: "2023", ns: "amzn:2023", from: osRel},
		{name: "unknown product in redhat-release", files: map[string]string{"etc/redhat-release": "Scientific Linux release 7.9 (Nitrogen)\n"}, none: true},
		{name: "rhel os-release without VERSION_ID borrows redhat-release", files: map[string]string{osRel: "ID=\"rhel\"\n", "etc/redhat-release": "Red Hat Enterprise Linux release 9.3 (Plow)\n"},
			id: "rhel", version: "9.3", ns: "rhel:9", from: osRel},
		{name: "os-release without VERSION_ID keeps its ID over another's file", files: map[string]string{osRel: "ID=\"rhel\"\n", "etc/alpine-release": "3.19.0\n"},
			id: "rhel", from: osRel},

		// Unrecognisable content in the lower sources is skipped.
		{name: "garbage release files", files: map[string]string{
			"etc/alpine-release": "hello\n", debVersion: "\x00\x01", "etc/redhat-release": "release", sourcesList: "\xff\xfe garbage [",
		}, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Detect(image(tc.files))
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if tc.none {
				if ok {
					t.Fatalf("Detect identified %+v; want nothing", got)
				}
				return
			}
			if !ok {
				t.Fatal("Detect identified nothing")
			}
			if got.ID != tc.id || got.VersionID != tc.version || got.VersionCodename != tc.codename ||
				got.Namespace != tc.ns || got.Source != tc.from {
				t.Errorf("Detect = %+v\nwant id %q version %q codename %q namespace %q source %q",
					got, tc.id, tc.version, tc.codename, tc.ns, tc.from)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	big := strings.Repeat("# padding line\n", maxReleaseFile/15+1)
	for _, tc := range []struct {
		name  string
		fsys  fstest.MapFS
		error string
	}{
		{"binary os-release", image(map[string]string{osRel: "\x7fELF\x02\x01\x01\x00"}), "detect: etc/os-release: NUL byte"},
		{"unterminated quote", image(map[string]string{osRel: "ID=debian\nNAME=\"Debian\n"}), "detect: etc/os-release: line 2: NAME: unterminated double quote"},
		{"oversized os-release", image(map[string]string{osRel: "ID=x\n" + big}), "more than the 65536 allowed"},
		{"long line", image(map[string]string{osRel: "ID=" + strings.Repeat("x", maxLine+1)}), "longer than 8192 bytes"},
		{"os-release is a folder", fstest.MapFS{"etc/os-release/x": {}}, "etc/os-release: not a regular file"},
		{"bad usr/lib/os-release", image(map[string]string{usrRel: "ID debian"}), "usr/lib/os-release: line 1: not a KEY=VALUE"},
		{"bad lsb-release", image(map[string]string{lsbRel: "DISTRIB_ID=\"Ubuntu"}), "etc/lsb-release: line 1"},
		{"oversized sources", image(map[string]string{sourcesList: strings.Repeat("#", maxSourcesFile+1)}), "etc/apt/sources.list: 262145 bytes"},
		{"too many sources files", func() fstest.MapFS {
			m := fstest.MapFS{}
			for i := range maxSourcesDir + 1 {
				m[filepath.Join("etc/apt/sources.list.d", strings.Repeat("a", i+1)+".list")] = &fstest.MapFile{}
			}
			return m
		}(), "129 files, more than the 128 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok, err := Detect(tc.fsys)
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Fatalf("Detect = %+v, %v, %v; want an error containing %q", d, ok, err, tc.error)
			}
			if ok {
				t.Error("ok with an error")
			}
		})
	}
}

// TestSymlinkedOSRelease reads images where etc/os-release is a symlink, as
// debootstrap leaves it (../usr/lib/os-release), dangling, or looping.
func TestSymlinkedOSRelease(t *testing.T) {
	content, err := os.ReadFile(testdata.Path(t, "osrelease", "debian-debootstrap", "trixie", "usr", "lib", "os-release"))
	if err != nil {
		t.Fatal(err)
	}
	root := func(t *testing.T, target string) string {
		dir := t.TempDir()
		for _, d := range []string{"etc", "usr/lib"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "etc/os-release")); err != nil {
			t.Skipf("symlinks unavailable: %v", err)
		}
		return dir
	}
	t.Run("to usr/lib", func(t *testing.T) {
		d, ok, err := Detect(os.DirFS(root(t, "../usr/lib/os-release")))
		if err != nil || !ok || d.Namespace != "debian:13" || d.VersionCodename != "trixie" || d.Source != osRel {
			t.Errorf("Detect = %+v, %v, %v", d, ok, err)
		}
	})
	t.Run("dangling", func(t *testing.T) {
		d, ok, err := Detect(os.DirFS(root(t, "../usr/lib/missing")))
		if err != nil || !ok || d.Namespace != "debian:13" || d.Source != usrRel {
			t.Errorf("Detect = %+v, %v, %v", d, ok, err)
		}
	})
	t.Run("loop", func(t *testing.T) {
		dir := root(t, "os-release")
		if _, _, err := Detect(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "os-release") {
			t.Errorf("Detect error = %v, want one naming os-release", err)
		}
	})
}
