package update

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/storetest"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// upstream is a feed server on loopback serving files from memory, each
// with a Last-Modified time, and counting the requests of each path.
type upstream struct {
	mu    sync.Mutex
	files map[string][]byte
	mod   map[string]time.Time
	hits  map[string]int
	srv   *httptest.Server
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{files: map[string][]byte{}, mod: map[string]time.Time{}, hits: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		b, ok := u.files[r.URL.Path]
		mod := u.mod[r.URL.Path]
		u.hits[r.URL.Path]++
		u.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, mod, bytes.NewReader(b))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// put serves b at path, and its sha256 at path.sha256 ("<hex>  <name>").
func (u *upstream) put(path string, b []byte, mod time.Time) {
	sum := sha256.Sum256(b)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[path], u.mod[path] = b, mod
	u.files[path+".sha256"] = fmt.Appendf(nil, "%x  %s\n", sum, path[strings.LastIndexByte(path, '/')+1:])
}

// raw serves b at path as it is.
func (u *upstream) raw(path string, b []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[path] = b
}

func (u *upstream) hit(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

// member is one entry of a test archive: a document, or a directory when
// data is nil.
type member struct {
	name string
	data []byte
}

// tarZstd builds a zstd-compressed tar of the members.
func tarZstd(t testing.TB, members []member) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1725600000, 0)}
		if m.data == nil {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fixtureMembers returns the documents of the shared VEX fixture archive.
func fixtureMembers(t testing.TB) []member {
	t.Helper()
	f, err := os.Open(testdata.Path(t, "vulndata", "redhat-vex", "fixtures", "csaf_vex_2024-08-04.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []member
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, member{h.Name, b})
		}
	}
}

func vexDoc(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata.Path(t, "vulndata", "redhat-vex", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func scopeMap(t testing.TB, st *store.Store) map[string]store.Scope {
	t.Helper()
	out := map[string]store.Scope{}
	for _, sc := range scopes(t, st) {
		out[sc.Scope] = sc
	}
	return out
}

// advisories returns the stored advisories of id for pkg in ns.
func advisories(t testing.TB, st *store.Store, id, ns, pkg string) []model.Advisory {
	t.Helper()
	advs, err := st.Advisories(context.Background(), []string{ns}, []string{pkg})
	if err != nil {
		t.Fatal(err)
	}
	var found []model.Advisory
	for _, a := range advs {
		if a.ID == id {
			found = append(found, a)
		}
	}
	return found
}

// advisory returns the one stored advisory of id for pkg in ns.
func advisory(t testing.TB, st *store.Store, id, ns, pkg string) model.Advisory {
	t.Helper()
	found := advisories(t, st, id, ns, pkg)
	if len(found) != 1 {
		t.Fatalf("%s %s %s: %d advisories: %+v", id, ns, pkg, len(found), found)
	}
	return found[0]
}

// summary returns the set's summary result and the failures before it.
func summary(t testing.TB, res []Result) (Result, []Result) {
	t.Helper()
	if len(res) == 0 || res[len(res)-1].Set == nil {
		t.Fatalf("no set summary: %+v", res)
	}
	return res[len(res)-1], res[:len(res)-1]
}

var archiveDay = time.Date(2024, 8, 4, 0, 0, 0, 0, time.UTC)

// serveVEX serves a VEX set at /vex/: archive_latest.txt naming an archive
// of members dated archiveDay, and the change logs.
func serveVEX(u *upstream, archive []byte, changes, deletions string) {
	u.put("/vex/archive_latest.txt", []byte("csaf_vex_2024-08-04.tar.zst"), archiveDay)
	u.put("/vex/csaf_vex_2024-08-04.tar.zst", archive, archiveDay.Add(3*time.Hour))
	u.put("/vex/changes.csv", []byte(changes), time.Now())
	u.put("/vex/deletions.csv", []byte(deletions), time.Now())
}

func setOptions(u *upstream) Options {
	opt := DefaultOptions()
	opt.Client = u.srv.Client()
	return opt
}

// TestVEXSet: a first run imports the whole archive, reports its corrupt
// member and keeps that scope's data, skips its other files, and applies
// the changes made after the archive; later runs read the change logs only:
// a changed document is imported, an unchanged one is not even downloaded,
// a withdrawn one empties its scope, and a document disagreeing with its
// .sha256 is refused and read again next time.
func TestVEXSet(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		curl := vexDoc(t, "cve-2023-38545.json")
		curlFile := testdata.Path(t, "vulndata", "redhat-vex", "cve-2023-38545.json")
		if _, err := ImportFile(ctx, st, "redhat", curlFile, DefaultOptions()); err != nil {
			t.Fatal(err)
		}
		members := append([]member{{"2023", nil}, {"2024", nil}}, fixtureMembers(t)...)
		members = append(members,
			member{"2023/cve-2023-4154.json", vexDoc(t, "cve-2023-4154.json")},
			member{"2024/cve-2024-24786.json", vexDoc(t, "cve-2024-24786-simple.json")},
			member{"2023/cve-2023-38545.json", curl[:len(curl)/2]}, // corrupt
			member{"index.txt", []byte("not a document")},
		)
		u := newUpstream(t)
		base := u.srv.URL + "/vex/"
		// cve-2023-6212 changed after the archive was made: the standalone
		// fixture is its next revision. cve-2023-6228's entry is older than
		// the archive, so it is not read (the server has no such file).
		newer := vexDoc(t, "cve-2023-6212.json")
		u.put("/vex/2023/cve-2023-6212.json", newer, archiveDay.Add(10*time.Hour))
		serveVEX(u, tarZstd(t, members), `"2023/cve-2023-6212.json","2024-08-04T10:17:22+00:00"
"2023/cve-2023-6228.json","2024-07-20T08:00:00+00:00"
`, "")
		urls := map[string][]string{"redhat-csaf": {base}}
		res := Update(ctx, st, []string{"redhat-csaf"}, urls, setOptions(u))
		sum, failed := summary(t, res)
		if sum.Err != nil || *sum.Set != (SetCounts{Imported: 8, Failed: 1}) {
			t.Fatalf("first run: %+v %+v", sum, *sum.Set)
		}
		if len(failed) != 1 || !strings.Contains(failed[0].Err.Error(), "csaf_vex_2024-08-04.tar.zst#2023/cve-2023-38545.json") {
			t.Errorf("corrupt member not reported by name: %+v", failed)
		}
		if u.hit("/vex/2023/cve-2023-6228.json.sha256") != 0 {
			t.Error("a change older than the archive was read")
		}
		got := scopeMap(t, st)
		if c := got["redhat-vex/CVE-2023-38545"]; c.Advisories != 23 || c.Origin != curlFile {
			t.Errorf("the corrupt member replaced the stored document: %+v", c)
		}
		if a := advisory(t, st, "CVE-2023-38545", "rhel:9", "libcurl"); a.State != model.StateFixed || a.FixedVersion != "0:7.76.1-26.el9_3.2" {
			t.Errorf("libcurl: %+v", a)
		}
		if a := advisory(t, st, "CVE-2023-6212", "rhel:6", "firefox"); a.State != model.StateEndOfLife || !a.SourcePackage {
			t.Errorf("firefox: %+v", a)
		}
		if a := advisory(t, st, "CVE-2023-6212", "rhel:8", "thunderbird"); a.FixedVersion != "0:115.5.0-1.el8_9" {
			t.Errorf("thunderbird: %+v", a)
		}
		// samba, as a binary and as a source rpm.
		if advs := advisories(t, st, "CVE-2023-4154", "rhel:8", "samba"); len(advs) != 2 || advs[0].State != model.StateNotAffected || advs[1].State != model.StateNotAffected {
			t.Errorf("samba: %+v", advs)
		}
		if c := got["redhat-vex/CVE-2023-6212"]; c.Digest != digestOf(newer) || c.Origin != base+"2023/cve-2023-6212.json" {
			t.Errorf("the change after the archive was not applied: %+v", c)
		}
		if c := got["redhat-vex/CVE-2023-6240"]; c.Advisories == 0 || c.Origin != base+"csaf_vex_2024-08-04.tar.zst#2023/cve-2023-6240.json" {
			t.Errorf("archive member: %+v", c)
		}
		if m := got["redhat-vex/changes.csv"]; m.Advisories != 0 || m.Origin != base+"changes.csv#2024-08-04T10:17:22Z" || sum.Scope.Scope != m.Scope {
			t.Errorf("marker: %+v (summary %+v)", m, sum.Scope)
		}

		// Second run: the change logs only.
		archiveHits := u.hit("/vex/csaf_vex_2024-08-04.tar.zst")
		illegal := vexDoc(t, "cve-2024-24786-illegal-module.json")
		u.put("/vex/2024/cve-2024-24786.json", illegal, time.Now())
		u.put("/vex/2023/cve-2023-38545.json", curl, time.Now())
		u.put("/vex/changes.csv", []byte(`"2024/cve-2024-24786.json","2024-08-05T09:00:00+00:00"
"2023/cve-2023-38545.json","2024-08-05T08:00:00+00:00"
"2023/cve-2023-6212.json","2024-08-04T10:17:22+00:00"
`), time.Now())
		u.put("/vex/deletions.csv", []byte(`"2023/cve-2023-6228.json","2024-08-05T07:00:00+00:00"
`), time.Now())
		res = Update(ctx, st, []string{"redhat-csaf"}, urls, setOptions(u))
		sum, failed = summary(t, res)
		// 6212's entry is within the lag: its .sha256 is read, and matches.
		if sum.Err != nil || *sum.Set != (SetCounts{Imported: 1, Unchanged: 2, Withdrawn: 1}) || len(failed) != 0 {
			t.Fatalf("second run: %+v %+v %+v", sum, *sum.Set, failed)
		}
		if u.hit("/vex/csaf_vex_2024-08-04.tar.zst") != archiveHits {
			t.Error("the archive was downloaded again")
		}
		if u.hit("/vex/2023/cve-2023-38545.json") != 0 {
			t.Error("a document whose .sha256 is the stored digest was downloaded")
		}
		got = scopeMap(t, st)
		if c := got["redhat-vex/CVE-2024-24786"]; c.Digest != digestOf(illegal) || c.Origin != base+"2024/cve-2024-24786.json" {
			t.Errorf("change not applied: %+v", c)
		}
		if c := got["redhat-vex/CVE-2023-6228"]; c.Advisories != 0 || c.Origin != base+"deletions.csv" {
			t.Errorf("withdrawn scope with advisories: %+v", c)
		}
		if m := got["redhat-vex/changes.csv"]; m.Origin != base+"changes.csv#2024-08-05T09:00:00Z" {
			t.Errorf("marker: %+v", m)
		}

		// Third run: a document disagreeing with its .sha256 is refused and
		// the marker stays; a withdrawn scope without advisories stays empty.
		u.put("/vex/2023/cve-2023-4154.json", curl, time.Now())
		u.raw("/vex/2023/cve-2023-4154.json.sha256", []byte(strings.TrimPrefix(digestOf(newer), "sha256:")))
		u.put("/vex/changes.csv", []byte(`"2023/cve-2023-4154.json","2024-08-06T09:00:00+00:00"
`), time.Now())
		u.put("/vex/deletions.csv", []byte(`"2024/cve-2024-24786.json","2024-08-06T08:00:00+00:00"
`), time.Now())
		before := scopeMap(t, st)
		res = Update(ctx, st, []string{"redhat-csaf"}, urls, setOptions(u))
		sum, failed = summary(t, res)
		if sum.Err != nil || *sum.Set != (SetCounts{Withdrawn: 1, Failed: 1}) || sum.Scope.Scope != "" {
			t.Fatalf("third run: %+v %+v", sum, *sum.Set)
		}
		if len(failed) != 1 || !errors.Is(failed[0].Err, errChecksum) || !strings.Contains(failed[0].Err.Error(), base+"2023/cve-2023-4154.json") {
			t.Errorf("checksum mismatch: %+v", failed)
		}
		got = scopeMap(t, st)
		if got["redhat-vex/CVE-2023-4154"] != before["redhat-vex/CVE-2023-4154"] || got["redhat-vex/changes.csv"] != before["redhat-vex/changes.csv"] {
			t.Errorf("a refused run changed the document or the marker: %+v", got)
		}
		if c := got["redhat-vex/CVE-2024-24786"]; c.Advisories != 0 || c.Origin != base+"deletions.csv" {
			t.Errorf("withdrawn: %+v", c)
		}
	})
}

// TestVEXArchiveRefused: an archive that disagrees with its .sha256, is cut
// short, is corrupt, or holds an oversized document imports nothing.
func TestVEXArchiveRefused(t *testing.T) {
	docs := fixtureMembers(t)
	good := tarZstd(t, docs)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	for what, c := range map[string]struct {
		archive []byte
		sum     []byte // the .sha256 served, when not the archive's own
		max     int64
		want    string
	}{
		"wrong checksum": {good, []byte(strings.Repeat("ab", 32) + "  csaf_vex_2024-08-04.tar.zst"), 0, "checksum mismatch: sha256 "},
		"other file's checksum": {good, []byte(strings.Repeat("ab", 32) + "  csaf_vex_2024-08-03.tar.zst"), 0,
			"csaf_vex_2024-08-04.tar.zst.sha256: it is the checksum of"},
		"truncated":  {good[:len(good)*2/3], nil, 0, "unexpected EOF"},
		"corrupt":    {corrupt, nil, 0, "member "},
		"oversized":  {good, nil, 100 << 10, "exceeds the 102400-byte document limit"},
		"not a name": {nil, nil, 0, `"../x.tar.zst" is not an archive name`},
	} {
		t.Run(what, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t)
			old := testdata.Path(t, "vulndata", "redhat-vex", "cve-2023-6212.json")
			if _, err := ImportFile(ctx, st, "redhat", old, DefaultOptions()); err != nil {
				t.Fatal(err)
			}
			before := scopes(t, st)
			u := newUpstream(t)
			serveVEX(u, c.archive, "", "")
			if c.sum != nil {
				u.raw("/vex/csaf_vex_2024-08-04.tar.zst.sha256", c.sum)
			}
			if c.archive == nil {
				u.raw("/vex/archive_latest.txt", []byte("../x.tar.zst\n"))
			}
			opt := setOptions(u)
			if c.max > 0 {
				opt.MaxDocumentSize = c.max
			}
			res := Update(ctx, st, []string{"redhat-csaf"}, map[string][]string{"redhat-csaf": {u.srv.URL + "/vex/"}}, opt)
			sum, failed := summary(t, res)
			if sum.Err == nil || !strings.Contains(sum.Err.Error(), c.want) || len(failed) != 0 || *sum.Set != (SetCounts{}) {
				t.Errorf("err = %v, want %q; %+v", sum.Err, c.want, res)
			}
			if got := scopes(t, st); !reflect.DeepEqual(got, before) {
				t.Errorf("stored scopes changed: %+v", got)
			}
		})
	}
}

// TestOVALManifest: a Red Hat OVAL v2 document is checked against the
// PULP_MANIFEST of its oval/v2 directory: the right sha256 and size import,
// anything else is refused and the old data kept.
func TestOVALManifest(t *testing.T) {
	doc, err := os.ReadFile(testdata.Path(t, "vulndata", "redhat-oval", "v2", "fixtures", "rhel-9-including-unpatched.oval.xml.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	const rel = "RHEL9/rhel-9-including-unpatched.oval.xml.bz2"
	sum := sha256.Sum256(doc)
	right := fmt.Sprintf("RHEL8/rhel-8.oval.xml.bz2,%s,12\n%s,%x,%d\n", strings.Repeat("0", 64), rel, sum, len(doc))
	u := newUpstream(t)
	u.put("/data/oval/v2/"+rel, doc, time.Now())
	ctx := context.Background()
	st := openStore(t)
	urls := map[string][]string{"redhat-oval": {u.srv.URL + "/data/oval/v2/" + rel}}
	u.put("/data/oval/v2/PULP_MANIFEST", []byte(right), time.Now())
	res := Update(ctx, st, []string{"redhat-oval"}, urls, setOptions(u))
	if len(res) != 1 || res[0].Err != nil || res[0].Scope.Scope != "redhat-oval/v2-including-unpatched/rhel-9" || res[0].Scope.Advisories == 0 {
		t.Fatalf("verified document: %+v", res)
	}
	before := scopes(t, st)
	for what, c := range map[string]struct{ manifest, want string }{
		"wrong sha256":  {strings.Replace(right, fmt.Sprintf("%x", sum), strings.Repeat("1", 64), 1), "checksum mismatch: sha256 "},
		"wrong size":    {strings.Replace(right, fmt.Sprintf(",%d\n", len(doc)), fmt.Sprintf(",%d\n", len(doc)+1), 1), fmt.Sprintf("checksum mismatch: %d bytes sent, upstream says %d", len(doc), len(doc)+1)},
		"missing entry": {"RHEL8/rhel-8.oval.xml.bz2," + strings.Repeat("0", 64) + ",12\n", "PULP_MANIFEST lists no " + rel},
		"malformed":     {"RHEL9/x,zz,1\n", "PULP_MANIFEST line 1: RHEL9/x: bad sha256"},
	} {
		u.put("/data/oval/v2/PULP_MANIFEST", []byte(c.manifest), time.Now())
		res := Update(ctx, st, []string{"redhat-oval"}, urls, setOptions(u))
		if len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), c.want) || !strings.Contains(res[0].Err.Error(), urls["redhat-oval"][0]) {
			t.Errorf("%s: %+v, want %q naming the URL", what, res, c.want)
		}
		if got := scopes(t, st); !reflect.DeepEqual(got, before) {
			t.Errorf("%s: stored scopes changed: %+v", what, got)
		}
	}
	// Without a Content-Length, the size and sha256 are checked as read,
	// inside the import's transaction.
	mux := http.NewServeMux()
	mux.HandleFunc("/data/oval/v2/PULP_MANIFEST", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s,%s,%d\n", rel, strings.Repeat("1", 64), len(doc))
	})
	mux.HandleFunc("/data/oval/v2/"+rel, func(w http.ResponseWriter, r *http.Request) {
		w.Write(doc[:1])
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write(doc[1:])
	})
	chunked := httptest.NewServer(mux)
	defer chunked.Close()
	res = Update(ctx, st, []string{"redhat-oval"}, map[string][]string{"redhat-oval": {chunked.URL + "/data/oval/v2/" + rel}}, DefaultOptions())
	if len(res) != 1 || !errors.Is(res[0].Err, errChecksum) {
		t.Errorf("chunked, wrong sha256: %+v", res)
	}
	if got := scopes(t, st); !reflect.DeepEqual(got, before) {
		t.Errorf("chunked: stored scopes changed: %+v", got)
	}
}
