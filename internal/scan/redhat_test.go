package scan_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/catalog/rpm"
	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// txtarMember returns the body of the member of a txtar archive whose name
// ends with suffix; exactly one member must.
func txtarMember(t *testing.T, archive, suffix string) []byte {
	t.Helper()
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	found := 0
	for chunk := range bytes.SplitSeq(data, []byte("\n-- ")) {
		header, rest, ok := bytes.Cut(chunk, []byte(" --\n"))
		if ok && !bytes.Contains(header, []byte("\n")) && strings.HasSuffix(string(header), suffix) {
			body = rest
			found++
		}
	}
	if found != 1 {
		t.Fatalf("%s: %d members named *%s, want 1", archive, found, suffix)
	}
	return body
}

// rhelTruth is the groundtruth/rhel file: its inputs and expected ids.
type rhelTruth struct {
	oval, manifest, imageID string
	ids                     []string // sorted
	titles                  map[string]string
}

func readRHELTruth(t *testing.T, path string) rhelTruth {
	t.Helper()
	header, lines := readTruth(t, path)
	gt := rhelTruth{oval: header["oval"], titles: map[string]string{}}
	file, rest, _ := strings.Cut(header["packages"], " :: ")
	gt.manifest = file
	if m := regexp.MustCompile(`image id ([0-9a-f]+)`).FindStringSubmatch(rest); m != nil {
		gt.imageID = m[1]
	}
	for _, line := range lines {
		id, title, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: line %q: want \"ID: title\"", path, line)
		}
		gt.ids = append(gt.ids, id)
		gt.titles[id] = title
	}
	if gt.oval == "" || gt.manifest == "" || gt.imageID == "" || len(gt.ids) == 0 {
		t.Fatalf("%s: header lacks oval, packages or image id, or no ids listed", path)
	}
	slices.Sort(gt.ids)
	return gt
}

// TestRHEL8OVALGroundTruth matches the ubi8 8.0 rpm-manifest against the
// whole RHEL 8 OVAL v1 of 2019-11-13: the definitions that apply must be
// exactly the groundtruth's 16 RHSAs. The same packages on a CentOS Linux,
// Rocky or AlmaLinux 8 image are matched with the same Red Hat data; on
// CentOS Stream, Oracle Linux or another RHEL major they are not.
func TestRHEL8OVALGroundTruth(t *testing.T) {
	gt := readRHELTruth(t, testdata.Path(t, "groundtruth", "rhel", "ubi8-8.0-amd64__oval-v1-rhsa-RHEL8-2019-11-13.txt"))
	body := txtarMember(t, testdata.Path(t, gt.manifest), "/images/id/"+gt.imageID+"/rpm-manifest")
	pkgs, err := rpm.ParseManifest(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t, "redhat", gt.oval)

	for _, tc := range []struct {
		ns   string
		want []string
	}{
		{"rhel:8", gt.ids},
		{"centos:8", gt.ids},
		{"rocky:8", gt.ids},
		{"alma:8", gt.ids},
		{"centos-stream:8", nil},
		{"oracle:8", nil},
		{"rhel:9", nil},
	} {
		t.Run(tc.ns, func(t *testing.T) {
			ids := map[string]bool{}
			for _, f := range matchClean(t, st, &model.Distribution{Namespace: tc.ns}, pkgs) {
				a, p := f.Advisory, f.Package
				ids[a.ID] = true
				if a.Namespace != "rhel:8" || a.Source != "redhat-oval" || a.State != model.StateFixed {
					t.Errorf("%s: %+v: want a fixed redhat-oval advisory of rhel:8", a.ID, a)
				}
				if !strings.Contains(a.Title, gt.titles[a.ID]) {
					t.Errorf("%s: title %q, want it to hold %q", a.ID, a.Title, gt.titles[a.ID])
				}
				if a.Package != p.Name || a.Module != "" || (len(a.Arch) > 0 && !slices.Contains(a.Arch, p.Arch) && p.Arch != "noarch") {
					t.Errorf("%s: advisory for %s (arch %v, module %q) matched %s.%s", a.ID, a.Package, a.Arch, a.Module, p.Name, p.Arch)
				}
			}
			got := slices.Sorted(maps.Keys(ids))
			if !slices.Equal(got, tc.want) {
				t.Errorf("RHSAs:\n got %d %q\nwant %d %q", len(got), got, len(tc.want), tc.want)
			}
		})
	}
}

// rpmPkg is an installed rpm as the rpm cataloger reports it.
func rpmPkg(name, evr, arch, srcName string) model.Package {
	return model.Package{Kind: model.KindRPM, Name: name, Version: evr, Arch: arch, SourceName: srcName, SourceVersion: stripEpoch(evr)}
}

func stripEpoch(evr string) string {
	if _, vr, ok := strings.Cut(evr, ":"); ok {
		return vr
	}
	return evr
}

// findingLines renders findings as "namespace name.arch version id state
// fixed", in Match's order.
func findingLines(fs []model.Finding) []string {
	var out []string
	for _, f := range fs {
		p, a := f.Package, f.Advisory
		out = append(out, fmt.Sprintf("%s %s.%s %s %s %s %s", a.Namespace, p.Name, p.Arch, p.Version, a.ID, a.State, a.FixedVersion))
	}
	return out
}

// matchCase is a package list on one distribution and the findings expected.
type matchCase struct {
	ns   string
	pkgs []model.Package
	want []string // findingLines
}

// checkMatches runs Match for each case against st, as a subtest per
// namespace, and compares the findings exactly; every finding must come from
// source.
func checkMatches(t *testing.T, st match.Source, source string, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.ns, func(t *testing.T) {
			findings := matchClean(t, st, &model.Distribution{Namespace: tc.ns}, tc.pkgs)
			if got := findingLines(findings); !slices.Equal(got, tc.want) {
				t.Errorf("findings:\n got %q\nwant %q", got, tc.want)
			}
			for _, f := range findings {
				if f.Advisory.Source != source {
					t.Errorf("%s: source %q, want %s", f.Advisory.ID, f.Advisory.Source, source)
				}
			}
		})
	}
}

// TestRedHatVEX imports three whole Red Hat CSAF VEX documents and matches
// affected, fixed and out-of-scope rpms of RHEL 6, 8 and 9 against them.
func TestRedHatVEX(t *testing.T) {
	st := newStore(t, "redhat",
		"vulndata/redhat-vex/cve-2023-38545.json", // curl: fixed in RHEL 9, not affected in 6–8
		"vulndata/redhat-vex/cve-2023-6212.json",  // firefox/thunderbird: fixed in 7–9, end of life in 6
		"vulndata/redhat-vex/cve-2023-4154.json",  // samba: not affected anywhere
	)
	checkMatches(t, st, "redhat-csaf", []matchCase{
		{"rhel:9", []model.Package{
			rpmPkg("curl", "7.76.1-26.el9_3.2", "x86_64", "curl"),       // the fix
			rpmPkg("curl-minimal", "7.76.1-14.el9", "x86_64", "curl"),   // older
			rpmPkg("libcurl", "7.76.1-26.el9", "x86_64", "curl"),        // older release
			rpmPkg("libcurl", "7.76.1-26.el9_3.3", "aarch64", "curl"),   // newer
			rpmPkg("firefox", "115.4.0-1.el9_2", "x86_64", "firefox"),   // older
			rpmPkg("thunderbird", "0:115.5.0-1.el9_3", "s390x", "tb"),   // the fix, epoch written
			rpmPkg("samba-client", "4.17.5-102.el9", "x86_64", "samba"), // not affected
		}, []string{
			"rhel:9 curl-minimal.x86_64 7.76.1-14.el9 CVE-2023-38545 fixed 0:7.76.1-26.el9_3.2",
			"rhel:9 firefox.x86_64 115.4.0-1.el9_2 CVE-2023-6212 fixed 0:115.5.0-1.el9_3",
			"rhel:9 libcurl.x86_64 7.76.1-26.el9 CVE-2023-38545 fixed 0:7.76.1-26.el9_3.2",
		}},
		{"rhel:8", []model.Package{
			rpmPkg("curl", "7.61.1-30.el8", "x86_64", "curl"),                 // not affected
			rpmPkg("firefox", "115.4.0-1.el8_8", "x86_64", "firefox"),         // older
			rpmPkg("firefox", "115.4.0-1.el8_8", "i686", "firefox"),           // no RHEL 8 fix for i686: not listed
			rpmPkg("thunderbird", "115.5.0-1.el8_9", "x86_64", "thunderbird"), // the fix
			rpmPkg("samba", "4.18.6-2.el8_9", "x86_64", "samba"),              // not affected
		}, []string{
			"rhel:8 firefox.x86_64 115.4.0-1.el8_8 CVE-2023-6212 fixed 0:115.5.0-1.el8_9",
		}},
		{"rhel:6", []model.Package{
			rpmPkg("firefox", "102.15.0-1.el6_10", "x86_64", "firefox"), // source package out of support
			rpmPkg("curl", "7.19.7-54.el6_10", "x86_64", "curl"),        // not affected
		}, []string{
			"rhel:6 firefox.x86_64 102.15.0-1.el6_10 CVE-2023-6212 end-of-life ",
		}},
		// CentOS Linux 7 reads RHEL 7's data; CentOS Stream 9 does not read RHEL 9's.
		{"centos:7", []model.Package{rpmPkg("firefox", "102.15.0-1.el7_9", "x86_64", "firefox")}, []string{
			"rhel:7 firefox.x86_64 102.15.0-1.el7_9 CVE-2023-6212 fixed 0:115.5.0-1.el7_9",
		}},
		{"centos-stream:9", []model.Package{rpmPkg("firefox", "115.4.0-1.el9", "x86_64", "firefox")}, nil},
	})
}

// TestOracleOVAL imports two Oracle ELSA OVAL fixtures (an ELSA for three
// releases, and an excerpt of com.oracle.elsa-all.xml with per-arch criteria
// and a module stream) and matches affected and fixed rpms against them.
func TestOracleOVAL(t *testing.T) {
	st := newStore(t, "oracle",
		"vulndata/oracle-oval/fixtures/clair-v2-fetcher_oracle_test.2.xml",
		"vulndata/oracle-oval/fixtures/com.oracle.elsa-all.xml.bz2",
	)
	const kvm = "virt:kvm_utils:8070020230131173829:bc9b7d05"
	modular := func(p model.Package) model.Package { p.Module = kvm; return p }
	checkMatches(t, st, "oracle-oval", []matchCase{
		{"oracle:7", []model.Package{
			rpmPkg("firefox", "38.0.1-1.0.1.el7_1", "x86_64", "firefox"), // older
		}, []string{
			"oracle:7 firefox.x86_64 38.0.1-1.0.1.el7_1 ELSA-2015-1207 fixed 0:38.1.0-1.0.1.el7_1",
		}},
		{"oracle:6", []model.Package{
			rpmPkg("firefox", "38.1.0-1.0.1.el6_6", "x86_64", "firefox"), // the fix
		}, nil},
		{"oracle:5", []model.Package{
			rpmPkg("bind", "30:9.3.3-7.el5", "x86_64", "bind"),        // older
			rpmPkg("bind-libs", "30:9.3.3-7.el5", "i686", "bind"),     // older, under both arch branches: reported once
			rpmPkg("bind-utils", "9.3.3-9.el5", "i386", "bind"),       // epoch 0 < 30
			rpmPkg("bind-chroot", "30:9.3.3-8.el5", "x86_64", "bind"), // the fix
			rpmPkg("bind-devel", "30:9.3.3-7.el5", "ppc", "bind"),     // arch the ELSA does not cover
		}, []string{
			"oracle:5 bind.x86_64 30:9.3.3-7.el5 ELSA-2007-0057 fixed 30:9.3.3-8.el5",
			"oracle:5 bind-libs.i686 30:9.3.3-7.el5 ELSA-2007-0057 fixed 30:9.3.3-8.el5",
			"oracle:5 bind-utils.i386 9.3.3-9.el5 ELSA-2007-0057 fixed 30:9.3.3-8.el5",
		}},
		{"oracle:8", []model.Package{
			modular(rpmPkg("hivex", "1.3.18-20.module+el8.7.0+20872+8ee66348", "aarch64", "hivex")), // older, in the stream
			modular(rpmPkg("hivex", "1.3.18-21.module+el8.7.0+21037+8ee66348", "x86_64", "hivex")),  // the definition covers aarch64 only
			rpmPkg("hivex", "1.3.18-20.el8", "aarch64", "hivex"),                                    // not from the module
		}, []string{
			"oracle:8 hivex.aarch64 1.3.18-20.module+el8.7.0+20872+8ee66348 ELSA-2023-12342 fixed 0:1.3.18-21.module+el8.7.0+21037+8ee66348",
		}},
		// Oracle Linux rebuilds are not matched with Red Hat data, nor the reverse.
		{"rhel:7", []model.Package{rpmPkg("firefox", "38.0.1-1.el7_1", "x86_64", "firefox")}, nil},
	})
}

// TestRHEL8Rootfs scans a RHEL 8 root filesystem whose rpm database is a
// real Berkeley DB (one package, libuuid 2.32.1-42.el8_8, which no
// definition of the 2019 RHEL 8 OVAL names): the OS and the package must be
// read through the indexer as rpm would list them, with no finding.
func TestRHEL8Rootfs(t *testing.T) {
	st := newStore(t, "redhat", "vulndata/redhat-oval/v1/com.redhat.rhsa-RHEL8.xml.gz")
	release := map[string]string{}
	for _, f := range []string{"etc/os-release", "etc/redhat-release"} {
		b, err := os.ReadFile(testdata.Path(t, "osrelease", "rhel-family", "8", f))
		if err != nil {
			t.Fatal(err)
		}
		release[f] = string(b)
	}
	db, err := os.ReadFile(testdata.Path(t, "pkgdb", "rpm", "bdb", "rhel8-libuuid", "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	release["var/lib/rpm/Packages"] = string(db)
	rep, _, err := scan.New(st, nil).Scan(context.Background(), writeRootfs(t, release, nil), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Distribution == nil || rep.Distribution.Namespace != "rhel:8" {
		t.Fatalf("distribution %+v, want rhel:8", rep.Distribution)
	}
	want := model.Package{Kind: model.KindRPM, Name: "libuuid", Version: "2.32.1-42.el8_8", Arch: "x86_64", SourceName: "util-linux", SourceVersion: "2.32.1-42.el8_8", DBPath: "var/lib/rpm/Packages"}
	if len(rep.Packages) != 1 {
		t.Fatalf("packages %+v, want %+v", rep.Packages, want)
	}
	got := rep.Packages[0]
	got.Layer = ""
	if got != want {
		t.Errorf("package %+v, want %+v", got, want)
	}
	if len(rep.Vulnerabilities) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("findings %+v, warnings %q; want none", rep.Vulnerabilities, rep.Warnings)
	}
}
