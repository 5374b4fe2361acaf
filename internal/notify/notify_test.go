package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/storetest"
	"github.com/vigil-scanner/vigil/internal/testdata"
	"github.com/vigil-scanner/vigil/internal/update"
)

// tracker returns a Debian security tracker document (the real JSON
// format) with the given bookworm entries: package → CVE → JSON release.
func tracker(entries map[string]map[string]string) string {
	var pkgs []string
	for pkg, cves := range entries {
		var cs []string
		for cve, rel := range cves {
			cs = append(cs, fmt.Sprintf(`%q: {"description": "test issue %s", "scope": "local", "releases": {"bookworm": %s}}`, cve, cve, rel))
		}
		pkgs = append(pkgs, fmt.Sprintf(`%q: {%s}`, pkg, strings.Join(cs, ", ")))
	}
	return "{" + strings.Join(pkgs, ",\n") + "}"
}

const (
	open    = `{"status": "open", "repositories": {"bookworm": "1.12-1"}, "urgency": "low"}`
	fixedTr = `{"status": "resolved", "repositories": {"bookworm": "1.34+dfsg-1.2+deb12u1"}, "fixed_version": "1.34+dfsg-1.2+deb12u1", "urgency": "medium"}`
	bashFix = `{"status": "resolved", "repositories": {"bookworm": "5.2.15-2"}, "fixed_version": "5.2.15-3", "urgency": "high"}`
)

type webhook struct {
	*httptest.Server
	mu    sync.Mutex
	fails int      // answer 500 to this many more requests
	posts int      // requests received
	names []string // notifications accepted
}

func newWebhook(t *testing.T, fails int) *webhook {
	wh := &webhook{fails: fails}
	wh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Notification struct{ Name string } }
		b, _ := io.ReadAll(r.Body)
		wh.mu.Lock()
		defer wh.mu.Unlock()
		wh.posts++
		if r.Method != http.MethodPost || json.Unmarshal(b, &body) != nil || body.Notification.Name == "" {
			t.Errorf("webhook got %s %s", r.Method, b)
		}
		if wh.fails > 0 {
			wh.fails--
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		wh.names = append(wh.names, body.Notification.Name)
	}))
	t.Cleanup(wh.Close)
	return wh
}

func (wh *webhook) got() (int, []string) {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return wh.posts, slices.Clone(wh.names)
}

func importDoc(t *testing.T, st *store.Store, doc string) {
	t.Helper()
	if _, err := update.Import(context.Background(), st, "debian-tracker", "json", strings.NewReader(doc), update.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
}

func TestNotifications(t *testing.T) { storetest.Dialects(t, testNotifications) }

// testNotifications indexes two Debian 12 images, imports a first tracker
// document (silent), then one adding a bash CVE and dropping a gzip one:
// two notifications, delivered to a webhook that fails twice first, paged
// through the API, deleted, and not re-sent after deletion.
func testNotifications(t *testing.T, dsn string) {
	ctx := context.Background()
	minbase := testdata.Path(t, "images", "debian12-minbase.docker.tar")
	layered := testdata.Path(t, "images", "debian12-layers.docker.tar")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var imageIDs []string
	for _, img := range []string{minbase, layered} {
		rep, _, err := scan.New(st, nil).Scan(ctx, img, image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		imageIDs = append(imageIDs, rep.Image.ID)
	}
	slices.Sort(imageIDs)
	// A Clair v1 layer holding the images' base layer, and a child of it.
	base := rep0Layer(t, st, minbase)
	res, ok, err := st.LayerIndex(ctx, base, index.Version)
	if err != nil || !ok {
		t.Fatalf("cached base layer: %v %v", ok, err)
	}
	for _, l := range []store.ClairLayer{{Name: "clair-base", Result: res}, {Name: "clair-child", Parent: "clair-base", Result: []byte(`{}`)}} {
		l.Indexer = index.Version
		if _, err := st.PutClairLayer(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	wh := newWebhook(t, 2)
	now := time.Unix(1_800_000_000, 0)
	var sleeps []time.Duration
	n, err := New(st, Config{Endpoint: wh.URL, Attempts: 3, RenotifyInterval: time.Hour,
		Now:   func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	pass := func(want int) []string {
		t.Helper()
		names, err := n.Pass(ctx)
		if err != nil || len(names) != want {
			t.Fatalf("pass: %d notifications (%v), want %d", len(names), err, want)
		}
		return names
	}
	pass(0) // the images, recorded before any advisory
	importDoc(t, st, tracker(map[string]map[string]string{
		"gzip": {"CVE-2099-1000": open},
		"tar":  {"CVE-2099-1001": fixedTr},
	}))
	pass(0) // the first import of debian-tracker notifies nothing
	importDoc(t, st, tracker(map[string]map[string]string{
		"tar":  {"CVE-2099-1001": fixedTr},
		"bash": {"CVE-2099-1002": bashFix},
	}))
	names := pass(2) // bash's CVE added, gzip's removed
	pass(0)          // nothing changed since

	if sent, err := n.Deliver(ctx); err != nil || sent != 2 {
		t.Fatalf("deliver: %d sent, %v", sent, err)
	}
	posts, got := wh.got()
	slices.Sort(got)
	slices.Sort(names)
	if posts != 4 || !slices.Equal(got, names) {
		t.Fatalf("webhook: %d posts, accepted %v; want 4 posts, %v", posts, got, names)
	}
	if !slices.Equal(sleeps, []time.Duration{time.Second, 2 * time.Second}) {
		t.Fatalf("backoff %v", sleeps)
	}

	codec, err := pagetoken.NewRandom(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Store: st, Pages: codec, Now: func() time.Time { return now }}
	get := func(name, query string) (int, Notification, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.GetNotification(rec, httptest.NewRequest("GET", "/v1/notifications/"+name+"?"+query, nil), name)
		var body struct {
			Notification Notification
			Error        struct{ Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s?%s: %v: %s", name, query, err, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json;charset=utf-8" {
			t.Fatalf("content type %q", ct)
		}
		return rec.Code, body.Notification, body.Error.Message
	}

	var added, removed string
	for _, name := range names {
		code, nt, msg := get(name, "limit=10")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", name, code, msg)
		}
		switch {
		case nt.New != nil && nt.Old == nil:
			added = name
		case nt.Old != nil && nt.New == nil:
			removed = name
		}
	}
	if added == "" || removed == "" {
		t.Fatalf("want one added and one removed vulnerability among %v", names)
	}
	_, nt, _ := get(removed, "limit=10")
	if v := nt.Old.Vulnerability; v.Name != "CVE-2099-1000" || v.NamespaceName != "debian:12" || len(v.FixedIn) != 1 || v.FixedIn[0].Version != "None" || v.FixedIn[0].Name != "gzip" {
		t.Fatalf("removed: %+v", v)
	}
	if !slices.Equal(nt.Old.Images, imageIDs) || nt.Notified != fmt.Sprint(now.Unix()) || nt.Created == "" || nt.Deleted != "" {
		t.Fatalf("removed: %+v", nt)
	}

	// The added one, a page of one layer at a time: the images' base layer
	// twice (once per image) and the Clair layer introducing bash.
	var images, layers []string
	query := "limit=1"
	for page := 1; ; page++ {
		code, nt, msg := get(added, query)
		if code != 200 || nt.Limit != 1 || nt.Page == "" || nt.New == nil {
			t.Fatalf("page %d: %d %s %+v", page, code, msg, nt)
		}
		v := nt.New.Vulnerability
		if v.Name != "CVE-2099-1002" || v.Severity != "High" || v.Description != "test issue CVE-2099-1002" ||
			len(v.FixedIn) != 1 || v.FixedIn[0] != (Feature{Name: "bash", NamespaceName: "debian:12", VersionFormat: "dpkg", Version: "5.2.15-3"}) {
			t.Fatalf("added: %+v", v)
		}
		l := nt.New.OrderedLayersIntroducingVulnerability
		if len(l) != 1 || l[0].Index != int64(page) || !slices.Equal(nt.New.LayersIntroducingVulnerability, []string{l[0].LayerName}) {
			t.Fatalf("page %d layers: %+v", page, nt.New)
		}
		layers = append(layers, l[0].LayerName)
		images = append(images, nt.New.Images...)
		if nt.NextPage == "" {
			break
		}
		if page == 3 {
			t.Fatal("more than three pages for three layers")
		}
		query = "limit=1&page=" + nt.NextPage
	}
	slices.Sort(images)
	slices.Sort(layers)
	if !slices.Equal(images, imageIDs) || !slices.Equal(layers, []string{"clair-base", base, base}) {
		t.Fatalf("paged images %v, layers %v; want %v, and %s twice and clair-base", images, layers, imageIDs, base)
	}

	for _, c := range []struct{ name, query, want string }{
		{added, "", "limit"},
		{added, "limit=0", "limit"},
		{added, "limit=x", "limit"},
		{added, "limit=1&page=garbage", "page"},
		{removed, "limit=1&page=" + tokenFor(t, codec, added), "another notification"},
	} {
		if code, _, msg := get(c.name, c.query); code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("GET ?%s: %d %q, want 400 naming %s", c.query, code, msg, c.want)
		}
	}
	if code, _, _ := get("no-such-notification", "limit=1"); code != 404 {
		t.Errorf("unknown notification: %d", code)
	}

	// DELETE stops re-delivery; the other one is sent again after the
	// renotify interval.
	del := func(name string) int {
		rec := httptest.NewRecorder()
		h.DeleteNotification(rec, httptest.NewRequest("DELETE", "/v1/notifications/"+name, nil), name)
		return rec.Code
	}
	if code := del(added); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
	if code := del(added); code != 404 {
		t.Fatalf("second DELETE: %d", code)
	}
	if sent, err := n.Deliver(ctx); err != nil || sent != 0 {
		t.Fatalf("within the renotify interval: %d sent, %v", sent, err)
	}
	now = now.Add(time.Hour + time.Second)
	if sent, err := n.Deliver(ctx); err != nil || sent != 1 {
		t.Fatalf("after the renotify interval: %d sent, %v", sent, err)
	}
	if _, got := wh.got(); len(got) != 3 || got[2] != removed {
		t.Fatalf("re-sent %v, want only %s again", got, removed)
	}

	// The bash CVE now names gzip too: one notification with both sides,
	// the old one described like the new.
	importDoc(t, st, tracker(map[string]map[string]string{
		"tar":  {"CVE-2099-1001": fixedTr},
		"bash": {"CVE-2099-1002": bashFix},
		"gzip": {"CVE-2099-1002": open},
	}))
	both := pass(1)[0]
	_, nt, _ = get(both, "limit=10")
	if nt.Old == nil || nt.New == nil {
		t.Fatalf("changed: %+v", nt)
	}
	if o, w := nt.Old.Vulnerability, nt.New.Vulnerability; o.Description != "test issue CVE-2099-1002" || o.Description != w.Description || len(o.FixedIn) != 1 || len(w.FixedIn) != 2 {
		t.Fatalf("changed: old %+v, new %+v", o, w)
	}
}

// rep0Layer returns the diff ID of the first layer of the image at path.
func rep0Layer(t *testing.T, st *store.Store, path string) string {
	t.Helper()
	rep, _, err := scan.New(st, nil).Scan(context.Background(), path, image.Options{})
	if err != nil || len(rep.Image.Layers) == 0 {
		t.Fatalf("%s: %v", path, err)
	}
	return rep.Image.Layers[0].DiffID
}

func tokenFor(t *testing.T, c *pagetoken.Codec, name string) string {
	tok, err := c.Encode(page{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
