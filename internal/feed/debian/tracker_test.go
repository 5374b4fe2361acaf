package debian

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
)

func trackerFixture(t testing.TB, name string) string {
	return string(readShared(t, "vulndata", "debian-tracker", "fixtures", name))
}

// key of an advisory in these tests: id/package/namespace.
func advKey(a model.Advisory) string { return a.ID + "/" + a.Package + "/" + a.Namespace }

func byKey(t *testing.T, advs []model.Advisory, source string) map[string]model.Advisory {
	t.Helper()
	m := map[string]model.Advisory{}
	for _, a := range advs {
		if why := wellFormed(a, source); why != "" {
			t.Errorf("%s: %s", advKey(a), why)
		}
		if _, dup := m[advKey(a)]; dup {
			t.Errorf("%s emitted twice", advKey(a))
		}
		m[advKey(a)] = a
	}
	return m
}

func TestTrackerFixtures(t *testing.T) {
	type want struct{ state, fixed, severity, upstream string }
	for _, tc := range []struct {
		file  string
		count int
		want  map[string]want
	}{{
		file:  "vunnel-debian.json",
		count: 2*4 + 4 + 4 + 5 + 4, // every release of every issue
		want: map[string]want{
			"CVE-2008-7220/prototypejs/debian:9":        {model.StateFixed, "1.6.0.2-1", model.SeverityHigh, "high**"},
			"CVE-2007-2383/prototypejs/debian:unstable": {model.StateNotAffected, "", model.SeverityNegligible, "unimportant"},
			"CVE-2013-1444/txt2man/debian:8":            {model.StateFixed, "1.5.5-4.1", model.SeverityLow, "low**"},
			"CVE-2005-3111/backupninja/debian:10":       {model.StateFixed, "0.8-2", model.SeverityMedium, "medium"},
			"CVE-2022-0456/chromium/debian:10":          {model.StateEndOfLife, "", model.SeverityUnknown, "end-of-life"},
			"CVE-2022-0456/chromium/debian:11":          {model.StateFixed, "98.0.4758.80-1~deb11u1", model.SeverityUnknown, "not yet assigned"},
			"CVE-2025-53603/sope/debian:13":             {model.StateFixed, "5.12.1-2", model.SeverityUnknown, "not yet assigned"},
		},
	}, {
		file:  "vuls-data-update-advisory.json",
		count: 8,
		want: map[string]want{
			"CVE-2012-0833/389-ds-base/debian:11":       {model.StateNotAffected, "", model.SeverityNegligible, "unimportant"},
			"CVE-2016-5405/389-ds-base/debian:unstable": {model.StateFixed, "1.3.5.15-1", model.SeverityUnknown, "not yet assigned"},
			"CVE-2016-5416/389-ds-base/debian:11":       {model.StateWontFix, "", model.SeverityUnknown, "not yet assigned"},
			"CVE-2016-5416/389-ds-base/debian:unstable": {model.StateUnfixed, "", model.SeverityUnknown, "not yet assigned"},
			"TEMP-0000000-0CA7E3/wordpress/debian:11":   {model.StateNotAffected, "", model.SeverityNegligible, "unimportant"},
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			advs, scope, err := parseAll(NewTracker(), tc.file, trackerFixture(t, tc.file))
			if err != nil || scope != "debian-tracker" {
				t.Fatalf("Parse = %q, %v", scope, err)
			}
			got := byKey(t, advs, "debian-tracker")
			if len(advs) != tc.count {
				t.Errorf("%d advisories, want %d", len(advs), tc.count)
			}
			for k, w := range tc.want {
				a, ok := got[k]
				if !ok {
					t.Errorf("%s missing", k)
					continue
				}
				if g := (want{a.State, a.FixedVersion, a.Severity, a.UpstreamSeverity}); g != w {
					t.Errorf("%s = %+v, want %+v", k, g, w)
				}
			}
		})
	}
}

func TestTrackerFieldsKept(t *testing.T) {
	advs, _, err := parseAll(NewTracker(), "json", trackerFixture(t, "vunnel-debian.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := byKey(t, advs, "debian-tracker")["CVE-2013-1444/txt2man/debian:9"]
	if !strings.HasPrefix(a.Description, "A certain Debian patch for txt2man") ||
		a.Link != "https://security-tracker.debian.org/tracker/CVE-2013-1444" || !a.SourcePackage {
		t.Errorf("advisory = %+v", a)
	}
}

// The clair v1 fixture has a hand-made broken release: resolved without a
// fixed version.
func TestTrackerClairFixtureRejected(t *testing.T) {
	_, _, err := parseAll(NewTracker(), "json", trackerFixture(t, "clair-v1-fetcher_debian_test.json"))
	want := `debian tracker: package aptdaemon: CVE-2015-1323: release wheezy: status "resolved" without fixed_version`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func trackerDoc(release string) string {
	return `{"openssl": {"CVE-2023-1": {"description": "d", "releases": {"bookworm": ` + release + `}}}}`
}

func TestTrackerStates(t *testing.T) {
	for _, tc := range []struct{ release, state, fixed, severity string }{
		{`{"status": "open", "urgency": "low"}`, model.StateUnfixed, "", model.SeverityLow},
		{`{"status": "open", "urgency": "medium", "nodsa": "Minor issue"}`, model.StateUnfixed, "", model.SeverityMedium},
		{`{"status": "open", "urgency": "low", "nodsa": "x", "nodsa_reason": "postponed"}`, model.StateDeferred, "", model.SeverityLow},
		{`{"status": "open", "urgency": "low*", "nodsa": "x", "nodsa_reason": "ignored"}`, model.StateWontFix, "", model.SeverityLow},
		{`{"status": "open", "urgency": "unimportant"}`, model.StateUnimportant, "", model.SeverityNegligible},
		{`{"status": "open", "urgency": "end-of-life", "nodsa_reason": "ignored"}`, model.StateEndOfLife, "", model.SeverityUnknown},
		{`{"status": "undetermined", "urgency": "high"}`, model.StateUnfixed, "", model.SeverityHigh},
		{`{"status": "open"}`, model.StateUnfixed, "", model.SeverityUnknown},
		{`{"status": "resolved", "fixed_version": "1:3.0.11-1~deb12u2", "urgency": "unimportant"}`, model.StateFixed, "1:3.0.11-1~deb12u2", model.SeverityNegligible},
		{`{"status": "resolved", "fixed_version": "0", "urgency": "not yet assigned"}`, model.StateNotAffected, "", model.SeverityUnknown},
	} {
		advs, _, err := parseAll(NewTracker(), "json", trackerDoc(tc.release))
		if err != nil || len(advs) != 1 {
			t.Errorf("%s: %d advisories, %v", tc.release, len(advs), err)
			continue
		}
		a := advs[0]
		if a.State != tc.state || a.FixedVersion != tc.fixed || a.Severity != tc.severity || a.Namespace != "debian:12" || a.Package != "openssl" {
			t.Errorf("%s: got %+v", tc.release, a)
		}
	}
}

func TestTrackerSkipsUnknownCodenames(t *testing.T) {
	doc := `{"p": {"CVE-1": {"releases": {"experimental": {"status": "open"}, "sid": {"status": "open"}}}, "TEMP-1": {"releases": []}}}`
	advs, _, err := parseAll(NewTracker(), "json", doc)
	if err != nil || len(advs) != 1 || advs[0].Namespace != "debian:unstable" {
		t.Errorf("got %+v, %v", advs, err)
	}
}

func TestTrackerErrors(t *testing.T) {
	long := strings.Repeat("a", maxValueBytes)
	for _, tc := range []struct{ doc, want string }{
		{trackerDoc(`{"status": "x"}`), `debian tracker: package openssl: CVE-2023-1: release bookworm: status: unknown value "x"`},
		{trackerDoc(`{"status": "open", "urgency": "critical"}`), `release bookworm: urgency: unknown value "critical"`},
		{trackerDoc(`{"status": "open", "nodsa_reason": "later"}`), `nodsa_reason: unknown value "later"`},
		{trackerDoc(`{"status": "resolved", "fixed_version": ""}`), `fixed_version: empty`},
		{trackerDoc(`{"status": "resolved", "fixed_version": "1 2"}`), `invalid character`},
		{trackerDoc(`{"status": 3}`), `package openssl: CVE-2023-1: json: cannot unmarshal number`},
		{trackerDoc(`[1]`), `cannot unmarshal array`},
		{`{"openssl": {"CVE-1": {"releases": [1]}}}`, `non-empty array`},
		{`[]`, `document: unexpected [`},
		{``, `document: unexpected EOF`},
		{`{"p": []}`, `package p: unexpected [`},
		{`{"": {}}`, `name: empty`},
		{`{"p": {"CVE 1": {}}}`, `issue id: "CVE 1": invalid character`},
		{`{"p": {}} {}`, `after the document: unexpected {`},
		{`{"p": {}} x`, `after the document: invalid character`},
		{`{"p": {"CVE-1": {"description": "` + long + `"}}}`, `value larger than`},
		{`{"` + long + `": {}}`, `value larger than`},
	} {
		_, _, err := parseAll(NewTracker(), "json", tc.doc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: err = %v, want it to contain %q", tc.doc, err, tc.want)
		}
	}
}

func TestTrackerTruncated(t *testing.T) {
	truncations(t, NewTracker(), "json", trackerFixture(t, "vuls-data-update-advisory.json"))
}

func TestTrackerReaderError(t *testing.T) {
	boom := errors.New("boom")
	doc := trackerFixture(t, "vunnel-debian.json")
	_, err := NewTracker().Parse(context.Background(), "json", readerErr{strings.NewReader(doc[:100]), boom}, func(model.Advisory) error { return nil })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

type readerErr struct {
	r   *strings.Reader
	err error
}

func (e readerErr) Read(p []byte) (int, error) {
	if e.r.Len() == 0 {
		return 0, e.err
	}
	return e.r.Read(p)
}

func TestTrackerEmitErrorAndCancel(t *testing.T) {
	doc := trackerFixture(t, "vunnel-debian.json")
	stop := errors.New("stop")
	n := 0
	_, err := NewTracker().Parse(context.Background(), "json", strings.NewReader(doc), func(model.Advisory) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("emit error: err = %v after %d", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewTracker().Parse(ctx, "json", strings.NewReader(doc), func(model.Advisory) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

func TestTrackerSniff(t *testing.T) {
	tr := NewTracker()
	for _, f := range []string{"vunnel-debian.json", "vuls-data-update-advisory.json", "clair-v1-fetcher_debian_test.json"} {
		doc := trackerFixture(t, f)
		if !tr.Sniff("https://security-tracker.debian.org/tracker/data/json", []byte(doc[:512])) {
			t.Errorf("%s not sniffed", f)
		}
		if !tr.Sniff("whatever", []byte(doc)) {
			t.Errorf("%s not sniffed by content", f)
		}
	}
	// A head too short to tell falls back to the name.
	if !tr.Sniff("data/json.gz", []byte(`{ "openssl": {`)) || tr.Sniff("data/x.xml", []byte(`{ "openssl": {`)) {
		t.Error("short head: name fallback wrong")
	}
	for _, neg := range [][]string{
		{"vulndata", "alpine-secdb", "whole-2024-12-31", "v3.20", "main.json"},
		{"vulndata", "nvd", "api2.0", "vunnel-full-page.json"},
		{"vulndata", "osv", "ubuntu", "UBUNTU-CVE-2021-3782.json"},
		{"vulndata", "debian-oval", "fixtures", "oval-definitions-bullseye.xml.bz2"},
	} {
		b := readSharedHead(t, neg...)
		if tr.Sniff(neg[len(neg)-1], b) {
			t.Errorf("%v sniffed as tracker", neg)
		}
	}
	if tr.Sniff("x.json", nil) || tr.Sniff("x.json", []byte(`{"a": 1}`)) || tr.Sniff("x.json", []byte(`{"a": {"b": {`)) {
		t.Error("non-tracker JSON sniffed")
	}
	if tr.Name() != "debian-tracker" || fmt.Sprint(tr.URLs()) != "[https://security-tracker.debian.org/tracker/data/json]" {
		t.Errorf("Name, URLs = %s, %v", tr.Name(), tr.URLs())
	}
}
