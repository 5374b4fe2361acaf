package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/storetest"
)

func TestLocks(t *testing.T) { storetest.Dialects(t, testLocks) }

// testLocks takes one lock from two handles on one database.
func testLocks(t *testing.T, dsn string) {
	ctx := context.Background()
	a, b := open(t, dsn), open(t, dsn)
	if ok, err := a.TryLock(ctx, "updater/x", "A", time.Minute); !ok || err != nil {
		t.Fatalf("A: %v %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "updater/x", "B", time.Minute); ok || err != nil {
		t.Fatalf("B took a held lock: %v %v", ok, err)
	}
	if ok, err := a.TryLock(ctx, "updater/x", "A", time.Minute); !ok || err != nil {
		t.Fatalf("A could not renew: %v %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "updater/y", "B", time.Minute); !ok || err != nil {
		t.Fatalf("B: another name: %v %v", ok, err)
	}
	if err := b.Unlock(ctx, "updater/x", "B"); err != nil { // not B's: no effect
		t.Fatal(err)
	}
	if ok, _ := b.TryLock(ctx, "updater/x", "B", time.Minute); ok {
		t.Fatal("Unlock by a non-owner released the lock")
	}
	if err := a.Unlock(ctx, "updater/x", "A"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "updater/x", "B", time.Millisecond); !ok || err != nil {
		t.Fatalf("B after release: %v %v", ok, err)
	}
	// An expired lock is taken over.
	for deadline := time.Now().Add(time.Millisecond); !time.Now().After(deadline.Add(time.Millisecond)); {
		time.Sleep(time.Millisecond)
	}
	if ok, err := a.TryLock(ctx, "updater/x", "A", time.Minute); !ok || err != nil {
		t.Fatalf("A over an expired lock: %v %v", ok, err)
	}
	if _, err := a.TryLock(ctx, "", "A", time.Minute); err == nil {
		t.Fatal("empty lock name accepted")
	}
	if _, err := a.TryLock(ctx, "n", "A", 0); err == nil {
		t.Fatal("zero ttl accepted")
	}
}

func TestConcurrentTryLock(t *testing.T) { storetest.Dialects(t, testConcurrentTryLock) }

// testConcurrentTryLock races eight owners on four handles for one lock:
// exactly one wins.
func testConcurrentTryLock(t *testing.T, dsn string) {
	ctx := context.Background()
	handles := []*Store{open(t, dsn), open(t, dsn), open(t, dsn), open(t, dsn)}
	wins := make(chan string, 8)
	errs := make(chan error, 8)
	start := make(chan struct{})
	for i := range 8 {
		go func() {
			<-start
			owner := string(rune('A' + i))
			ok, err := handles[i%len(handles)].TryLock(ctx, "race", owner, time.Minute)
			if ok {
				wins <- owner
			}
			errs <- err
		}()
	}
	close(start)
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(wins) != 1 {
		t.Fatalf("%d owners took the lock", len(wins))
	}
}

func TestUpdaterState(t *testing.T) { storetest.Dialects(t, testUpdaterState) }

func testUpdaterState(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	st, err := s.UpdaterState(ctx, "debian-tracker")
	if err != nil || !st.LastSuccess.IsZero() || !st.LastAttempt.IsZero() {
		t.Fatalf("fresh state: %+v %v", st, err)
	}
	t1 := time.UnixMilli(1_700_000_000_123)
	if err := s.RecordUpdate(ctx, "debian-tracker", t1, nil); err != nil {
		t.Fatal(err)
	}
	t2 := t1.Add(time.Minute)
	if err := s.RecordUpdate(ctx, "debian-tracker", t2, errors.New("HTTP 503")); err != nil {
		t.Fatal(err)
	}
	st, err = s.UpdaterState(ctx, "debian-tracker")
	if err != nil || !st.LastSuccess.Equal(t1) || !st.LastAttempt.Equal(t2) || st.LastError != "HTTP 503" {
		t.Fatalf("after a failure the last success must stay: %+v %v", st, err)
	}
	t3 := t2.Add(time.Minute)
	if err := s.RecordUpdate(ctx, "debian-tracker", t3, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ = s.UpdaterState(ctx, "debian-tracker"); !st.LastSuccess.Equal(t3) || st.LastError != "" {
		t.Fatalf("after a success: %+v", st)
	}
}

func TestNotifications(t *testing.T) { storetest.Dialects(t, testNotifications) }

func testNotifications(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	at := time.Unix(1_700_000_000, 0)
	layers := func(names ...string) []NotificationLayer {
		var out []NotificationLayer
		for _, n := range names {
			out = append(out, NotificationLayer{Layer: n, Image: "img"})
		}
		return out
	}
	notes := []NewNotification{
		{Name: "n1", New: []byte(`{"Name":"CVE-1"}`), NewLayers: layers("l1", "l2", "l3")},
		{Name: "n2", Old: []byte(`{"Name":"CVE-2"}`), OldLayers: layers("l1")},
	}
	states := map[string][]byte{"image:a": []byte(`{}`), "image:b": []byte(`{"x":1}`)}
	if err := s.SaveMatchPass(ctx, at, states, nil, notes); err != nil {
		t.Fatal(err)
	}
	// A failing pass (duplicate name) changes nothing, states included.
	err := s.SaveMatchPass(ctx, at, map[string][]byte{"image:c": []byte(`{}`)}, []string{"image:a"}, []NewNotification{{Name: "n1", New: []byte(`{}`)}})
	if err == nil {
		t.Fatal("duplicate notification accepted")
	}
	got, err := s.MatchStates(ctx)
	if err != nil || len(got) != 2 || string(got["image:b"]) != `{"x":1}` {
		t.Fatalf("states after a failed pass: %v %v", got, err)
	}
	if err := s.SaveMatchPass(ctx, at, nil, []string{"image:a"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.MatchStates(ctx); len(got) != 1 {
		t.Fatalf("drop: %v", got)
	}

	n, err := s.Notification(ctx, "n1")
	if err != nil || !n.Created.Equal(at) || !n.Notified.IsZero() || n.Old != nil || string(n.New) != `{"Name":"CVE-1"}` {
		t.Fatalf("n1: %+v %v", n, err)
	}
	page, more, err := s.NotificationLayers(ctx, "n1", "new", 0, 2)
	if err != nil || !more || len(page) != 2 || page[0].Layer != "l1" || page[1].Layer != "l2" {
		t.Fatalf("page 1: %+v %v %v", page, more, err)
	}
	page, more, err = s.NotificationLayers(ctx, "n1", "new", page[1].Index, 2)
	if err != nil || more || len(page) != 1 || page[0].Layer != "l3" || page[0].Image != "img" {
		t.Fatalf("page 2: %+v %v %v", page, more, err)
	}
	if _, _, err := s.NotificationLayers(ctx, "n1", "sideways", 0, 2); err == nil {
		t.Fatal("bad side accepted")
	}

	due, err := s.DueNotifications(ctx, at, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %v %v", due, err)
	}
	if err := s.MarkNotified(ctx, "n1", at); err != nil {
		t.Fatal(err)
	}
	if due, _ = s.DueNotifications(ctx, at, 10); len(due) != 1 || due[0] != "n2" {
		t.Fatalf("due after delivery of n1: %v", due)
	}
	if due, _ = s.DueNotifications(ctx, at.Add(time.Hour), 10); len(due) != 2 {
		t.Fatalf("n1 is due again after the renotify interval: %v", due)
	}
	if err := s.DeleteNotification(ctx, "n1", at); err != nil {
		t.Fatal(err)
	}
	if due, _ = s.DueNotifications(ctx, at.Add(time.Hour), 10); len(due) != 1 || due[0] != "n2" {
		t.Fatalf("a deleted notification is due: %v", due)
	}
	if err := s.DeleteNotification(ctx, "n1", at); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Notification(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing notification: %v", err)
	}
	if n, _ = s.Notification(ctx, "n1"); n.Deleted.IsZero() || n.Notified.IsZero() {
		t.Fatalf("deleted n1: %+v", n)
	}
}
