package redhat

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestOVALManifestURL(t *testing.T) {
	for u, want := range map[string]string{
		"https://security.access.redhat.com/data/oval/v2/RHEL9/rhel-9-including-unpatched.oval.xml.bz2": "https://security.access.redhat.com/data/oval/v2/PULP_MANIFEST",
		"http://127.0.0.1:8080/mirror/oval/v2/RHEL8/rhel-8.oval.xml.bz2?x=1":                            "http://127.0.0.1:8080/mirror/oval/v2/PULP_MANIFEST",
		"https://security.access.redhat.com/data/oval/com.redhat.rhsa-RHEL8.xml.bz2":                    "",
		"rhel-8.oval.xml.bz2": "",
	} {
		got, ok := OVAL{}.Manifest(u)
		if got != want || ok != (want != "") {
			t.Errorf("Manifest(%s) = %q, %v; want %q", u, got, ok, want)
		}
	}
}

// FuzzParsePulpManifest: a manifest gives an error or entries that read
// back the same once written out again.
func FuzzParsePulpManifest(f *testing.F) {
	f.Add([]byte("RHEL9/rhel-9.oval.xml.bz2," + strings.Repeat("a1", 32) + ",4182231\nRHEL8/rhel-8.oval.xml.bz2," + strings.Repeat("0f", 32) + ",12\n"))
	f.Add([]byte("x,y\n"))
	f.Add([]byte("/abs," + strings.Repeat("0", 64) + ",1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParsePulpManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		for p, c := range m {
			if !sha256Hex.MatchString(c.SHA256) || c.Size < 0 || p == "" || strings.HasPrefix(p, "/") {
				t.Fatalf("entry %q %+v accepted", p, c)
			}
			fmt.Fprintf(&b, "%s,%s,%d\n", p, c.SHA256, c.Size)
		}
		again, err := ParsePulpManifest(&b)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("written out again: %v, %+v, want %+v", err, again, m)
		}
	})
}
