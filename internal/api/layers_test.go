package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

type errorBody struct{ Error struct{ Message string } }

// TestClairV1ClientFlow posts the layers of a real three-layer image as a
// Clair v1 client does (parent first, fetched over HTTP with the headers
// given), and checks the layer view against `vigil scan` of the same image.
func TestClairV1ClientFlow(t *testing.T) {
	path := testdata.Path(t, "images", "debian12-layers.docker.tar")
	ds := extractDockerSave(t, path)
	blobs := newBlobServer(t, ds.dir)
	st := openStore(t)
	importTracker(t, st)
	_, ts := newServer(t, st, nil)

	names := map[string]string{} // layer name → diff ID
	parent := ""
	for i, blob := range ds.blobs {
		name := fmt.Sprintf("debian12-layers-%d", i)
		names[name] = ds.diffIDs[i]
		req := layerEnvelope{&Layer{Name: name, Path: blobs.URL + "/" + blob, ParentName: parent, Format: "Docker",
			Headers: map[string]string{"Authorization": blobAuth}}}
		var got layerEnvelope
		if code := call(t, "POST", ts.URL+"/v1/layers", req, &got); code != http.StatusCreated {
			t.Fatalf("post layer %d: status %d", i, code)
		}
		if got.Layer == nil || got.Layer.Name != name || got.Layer.IndexedByVersion == 0 || got.Layer.Headers != nil {
			t.Fatalf("post layer %d answered %+v", i, got.Layer)
		}
		parent = name
	}
	hits := blobs.hits.Load()
	if hits != int64(len(ds.blobs)) {
		t.Fatalf("%d blob requests for %d layers", hits, len(ds.blobs))
	}
	// Re-posting a known layer is answered without fetching it again.
	req := layerEnvelope{&Layer{Name: parent, Path: blobs.URL + "/nope", Format: "docker"}}
	if code := call(t, "POST", ts.URL+"/v1/layers", req, nil); code != http.StatusCreated || blobs.hits.Load() != hits {
		t.Fatalf("re-post: status %d, %d new fetches", code, blobs.hits.Load()-hits)
	}

	var got layerEnvelope
	if code := call(t, "GET", ts.URL+"/v1/layers/"+parent+"?features&vulnerabilities", nil, &got); code != http.StatusOK {
		t.Fatalf("get layer: %d", code)
	}
	l := got.Layer
	if l.Name != parent || l.ParentName != "debian12-layers-1" || l.NamespaceName != "debian:12" {
		t.Fatalf("layer = %s parent %s namespace %s", l.Name, l.ParentName, l.NamespaceName)
	}

	sc, _, err := scan.New(st, nil).Scan(context.Background(), path, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want, have []string
	for _, p := range sc.Packages {
		want = append(want, strings.Join([]string{p.Name, p.Version, p.Layer}, " "))
	}
	var wantVulns, haveVulns []string
	for _, v := range sc.Vulnerabilities {
		wantVulns = append(wantVulns, strings.Join([]string{v.Package, v.InstalledVersion, v.ID, v.FixedVersion, v.Severity, v.Layer}, " "))
	}
	for _, f := range l.Features {
		if f.NamespaceName != "debian:12" || f.VersionFormat != model.KindDpkg {
			t.Errorf("feature %s: namespace %q format %q", f.Name, f.NamespaceName, f.VersionFormat)
		}
		have = append(have, strings.Join([]string{f.Name, f.Version, names[f.AddedBy]}, " "))
		for _, v := range f.Vulnerabilities {
			haveVulns = append(haveVulns, strings.Join([]string{f.Name, f.Version, v.Name, v.FixedBy, v.Severity, names[f.AddedBy]}, " "))
		}
	}
	sameSet(t, "packages", have, want)
	sameSet(t, "findings", haveVulns, wantVulns)
	if len(want) < 90 || len(wantVulns) < 3 {
		t.Fatalf("scan found %d packages and %d findings: the comparison is too weak", len(want), len(wantVulns))
	}
	for _, s := range haveVulns {
		if strings.Contains(s, "CVE-2023-4911") || strings.Contains(s, "CVE-2099-1003") {
			t.Errorf("not-affected finding reported: %s", s)
		}
	}
	// Introducing layers are the names of the layers posted: openssl came
	// with the second layer.
	for _, f := range l.Features {
		if f.Name == "openssl" && f.AddedBy != "debian12-layers-1" {
			t.Errorf("openssl added by %q", f.AddedBy)
		}
	}

	// Without the query, no features; the base layer alone has its own.
	var bare layerEnvelope
	call(t, "GET", ts.URL+"/v1/layers/"+parent, nil, &bare)
	if bare.Layer.Features != nil || bare.Layer.NamespaceName != "debian:12" {
		t.Errorf("bare layer = %+v", bare.Layer)
	}

	// Deleting the middle layer deletes its descendant.
	if code := call(t, "DELETE", ts.URL+"/v1/layers/debian12-layers-1", nil, nil); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	var e errorBody
	if code := call(t, "GET", ts.URL+"/v1/layers/"+parent, nil, &e); code != http.StatusNotFound || e.Error.Message == "" {
		t.Fatalf("descendant after delete: %d %+v", code, e)
	}
	if code := call(t, "GET", ts.URL+"/v1/layers/debian12-layers-0", nil, nil); code != http.StatusOK {
		t.Fatalf("base after delete: %d", code)
	}
	if code := call(t, "DELETE", ts.URL+"/v1/layers/debian12-layers-1", nil, &e); code != http.StatusNotFound {
		t.Fatalf("second delete: %d", code)
	}
}

func sameSet(t *testing.T, what string, have, want []string) {
	t.Helper()
	sort.Strings(have)
	sort.Strings(want)
	if strings.Join(have, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s differ from the scan's:\nAPI:\n  %s\nscan:\n  %s", what, strings.Join(have, "\n  "), strings.Join(want, "\n  "))
	}
}
