package match

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
)

// advisories is an in-memory Source.
type advisories []model.Advisory

func (as advisories) Advisories(_ context.Context, namespaces, packages []string) ([]model.Advisory, error) {
	var out []model.Advisory
	for _, a := range as {
		for _, ns := range namespaces {
			for _, p := range packages {
				if a.Namespace == ns && a.Package == p {
					out = append(out, a)
				}
			}
		}
	}
	return out, nil
}

func deb(source, id, pkg, state, fixed string) model.Advisory {
	return model.Advisory{Source: source, ID: id, Namespace: "debian:12", Package: pkg, SourcePackage: true,
		VersionFormat: model.KindDpkg, State: state, FixedVersion: fixed, Severity: model.SeverityHigh}
}

func rpmAdv(id, pkg, fixed, module string, arch ...string) model.Advisory {
	return model.Advisory{Source: "redhat-oval", ID: id, Namespace: "rhel:8", Package: pkg, VersionFormat: model.KindRPM,
		State: model.StateFixed, FixedVersion: fixed, Module: module, Arch: arch}
}

func findings(t *testing.T, src Source, d *model.Distribution, pkgs ...model.Package) string {
	t.Helper()
	res, err := Match(context.Background(), src, d, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range res.Findings {
		out = append(out, f.Package.Name+":"+f.Advisory.ID+":"+f.Advisory.State)
	}
	for _, w := range res.Warnings {
		out = append(out, "warning:"+w)
	}
	return strings.Join(out, " ")
}

func TestSourcePackagesAndStates(t *testing.T) {
	src := advisories{
		deb("debian-tracker", "CVE-1", "glibc", model.StateFixed, "2.36-9+deb12u3"),
		deb("debian-tracker", "CVE-2", "glibc", model.StateNotAffected, ""),
		deb("debian-tracker", "CVE-3", "glibc", model.StateUnimportant, ""),
		deb("debian-tracker", "CVE-4", "bash", model.StateFixed, "5.2.15-2"),
		deb("debian-tracker", "CVE-5", "libc6", model.StateUnfixed, ""), // names a binary: no source package libc6
	}
	d := &model.Distribution{Namespace: "debian:12"}
	libc := model.Package{Kind: model.KindDpkg, Name: "libc6", Version: "2.36-9", SourceName: "glibc", SourceVersion: "2.36-9"}
	// binNMU of the fixed source version: the source version decides.
	bash := model.Package{Kind: model.KindDpkg, Name: "bash", Version: "5.2.15-2+b1", SourceName: "bash", SourceVersion: "5.2.15-2"}
	if got, want := findings(t, src, d, libc, bash), "libc6:CVE-1:fixed libc6:CVE-3:unimportant"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := findings(t, src, &model.Distribution{Namespace: "debian:11"}, libc); got != "" {
		t.Errorf("another release's data matched: %q", got)
	}
}

func TestTrackerOverridesOVAL(t *testing.T) {
	src := advisories{
		deb("debian-oval", "CVE-1", "glibc", model.StateUnfixed, ""),
		deb("debian-tracker", "CVE-1", "glibc", model.StateNotAffected, ""),
		deb("debian-oval", "CVE-2", "glibc", model.StateFixed, "2.37"),
		deb("debian-oval", "DSA-1", "glibc", model.StateFixed, "2.37"),
		deb("debian-tracker", "CVE-2", "glibc", model.StateFixed, "2.30"),
	}
	libc := model.Package{Kind: model.KindDpkg, Name: "libc6", Version: "2.36-9", SourceName: "glibc", SourceVersion: "2.36-9"}
	if got, want := findings(t, src, &model.Distribution{Namespace: "debian:12"}, libc), "libc6:DSA-1:fixed"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRPMArchModuleAndFamily(t *testing.T) {
	src := advisories{
		rpmAdv("RHSA-1", "openssl", "1:1.1.1k-5.el8", ""),
		rpmAdv("RHSA-2", "nodejs", "1:18.2-1.module+el8", "nodejs:18"),
		rpmAdv("RHSA-3", "kernel", "4.18.0-500.el8", "", "aarch64"),
	}
	pkgs := []model.Package{
		{Kind: model.KindRPM, Name: "openssl", Version: "1:1.1.1k-4.el8", Arch: "x86_64"},
		{Kind: model.KindRPM, Name: "nodejs", Version: "1:18.1-1.module+el8", Arch: "x86_64", Module: "nodejs:18:8060020220523160029:ad008a3a"},
		{Kind: model.KindRPM, Name: "kernel", Version: "4.18.0-400.el8", Arch: "x86_64"},
	}
	want := "nodejs:RHSA-2:fixed openssl:RHSA-1:fixed"
	if got := findings(t, src, &model.Distribution{Namespace: "rhel:8"}, pkgs...); got != want {
		t.Errorf("rhel: got %q, want %q", got, want)
	}
	if got := findings(t, src, &model.Distribution{Namespace: "rocky:8"}, pkgs...); got != want {
		t.Errorf("rocky uses rhel data: got %q, want %q", got, want)
	}
	if got := findings(t, src, &model.Distribution{Namespace: "centos-stream:8"}, pkgs...); got != "" {
		t.Errorf("centos stream must not use rhel data: %q", got)
	}
	// A modular advisory does not match the non-modular build, nor another stream.
	other := model.Package{Kind: model.KindRPM, Name: "nodejs", Version: "1:18.1-1", Arch: "x86_64"}
	stream := model.Package{Kind: model.KindRPM, Name: "nodejs", Version: "1:18.1-1", Arch: "x86_64", Module: "nodejs:20:1:x"}
	if got := findings(t, src, &model.Distribution{Namespace: "rhel:8"}, other, stream); got != "" {
		t.Errorf("module mismatch matched: %q", got)
	}
}

func TestInvalidVersionWarns(t *testing.T) {
	src := advisories{deb("debian-tracker", "CVE-1", "glibc", model.StateFixed, "not a version!")}
	libc := model.Package{Kind: model.KindDpkg, Name: "libc6", Version: "2.36-9", SourceName: "glibc", SourceVersion: "2.36-9"}
	got := findings(t, src, &model.Distribution{Namespace: "debian:12"}, libc)
	if !strings.HasPrefix(got, "warning:libc6 2.36-9: debian-tracker CVE-1:") {
		t.Errorf("got %q, want one warning", got)
	}
}
