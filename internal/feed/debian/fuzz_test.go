package debian

import (
	"fmt"
	"testing"

	"github.com/vigil-scanner/vigil/internal/feed"
)

// fuzzFeed parses doc twice: it must not panic, must give the same result
// both times, and on success every advisory must be well formed and the
// scope the expected one.
func fuzzFeed(t *testing.T, f feed.Feed, name, doc string, scopeOK func(string) bool) {
	f.Sniff(name, []byte(doc))
	advs, scope, err := parseAll(f, name, doc)
	again, scope2, err2 := parseAll(f, name, doc)
	if fmt.Sprint(advs, scope, err) != fmt.Sprint(again, scope2, err2) {
		t.Fatalf("two parses differ: %v / %v", err, err2)
	}
	if err != nil {
		return
	}
	if !scopeOK(scope) {
		t.Fatalf("scope %q", scope)
	}
	for _, a := range advs {
		if why := wellFormed(a, f.Name()); why != "" {
			t.Fatalf("%+v: %s", a, why)
		}
	}
}

func FuzzTracker(f *testing.F) {
	for _, name := range []string{"vunnel-debian.json", "vuls-data-update-advisory.json", "clair-v1-fetcher_debian_test.json"} {
		f.Add(trackerFixture(f, name))
	}
	f.Add(trackerDoc(`{"status": "open", "urgency": "low**", "nodsa": "x", "nodsa_reason": "postponed"}`))
	f.Fuzz(func(t *testing.T, doc string) {
		fuzzFeed(t, NewTracker(), "json", doc, func(s string) bool { return s == "debian-tracker" })
	})
}

func FuzzOVAL(f *testing.F) {
	f.Add(ovalFixture(f))
	f.Add(ovalDoc("DSA-1-1 openssl", "<product>openssl</product>", goodCrit, goodTest, goodObject, goodState))
	f.Fuzz(func(t *testing.T, doc string) {
		fuzzFeed(t, NewOVAL(), "oval-definitions-bullseye.xml", doc, func(s string) bool { return s == "debian-oval/bullseye" })
	})
}
