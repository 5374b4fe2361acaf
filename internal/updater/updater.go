// Package updater keeps the store's advisories fresh: every interval it
// runs update.Update for each configured feed, and on demand (Trigger).
//
// Rules:
//   - Feeds are updated one at a time, each under a store lock
//     ("updater/<feed>", renewed while the update runs), so among all
//     instances sharing one database only one updates a feed at a time; an
//     instance finding the lock held skips that feed for this round.
//   - A feed's last success is kept in the store (store.UpdaterState), moved
//     only when every document of the feed imported. After taking the lock
//     an instance reads it again and skips a feed another instance has just
//     updated, so concurrent instances fetch each feed once.
//   - A failed feed is retried after an exponential backoff (MinBackoff,
//     doubling, capped at MaxBackoff), kept per instance; a trigger ignores
//     the backoff.
//   - After a round that updated any feed, AfterUpdate runs (the notifier's
//     pass).
package updater

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/update"
)

// Config configures an Updater.
type Config struct {
	// Interval between successful updates of a feed; 0 disables the
	// schedule (Trigger still updates).
	Interval time.Duration
	// Sources selects feeds by name or name prefix ("debian" covers
	// debian-tracker and debian-oval); empty selects every feed.
	Sources []string
	// URLs overrides a feed's upstream URLs, by feed name.
	URLs    map[string][]string
	Options update.Options
	// Owner identifies this instance in locks; empty means a random id.
	Owner string
	// LockTTL bounds how long a crashed instance's lock blocks others
	// (default 10 minutes); the lock is renewed every LockTTL/3.
	LockTTL time.Duration
	// MinBackoff is the first retry delay after a failure (default 1
	// minute); MaxBackoff caps the doubling (default Interval, or an hour).
	MinBackoff, MaxBackoff time.Duration
	// AfterUpdate runs after a round that updated the named feeds.
	AfterUpdate func(ctx context.Context, feeds []string)
	Log         *slog.Logger
	Now         func() time.Time // clock; time.Now when nil
}

// Outcome is what a round did with one feed.
type Outcome string

// Outcomes of a feed in a round.
const (
	Updated    Outcome = "updated"     // every document imported
	Failed     Outcome = "failed"      // a document failed; the last success stays
	Fresh      Outcome = "fresh"       // updated recently enough, by this or another instance
	Busy       Outcome = "busy"        // another instance holds the feed's lock
	BackingOff Outcome = "backing-off" // failed recently; retried after the backoff
)

// FeedRun is one feed's part in a round.
type FeedRun struct {
	Feed    string
	Outcome Outcome
	Results []update.Result // per document, when the feed was fetched
	Err     error           // the failure (Failed), or a store error
}

// Updater updates feeds on a schedule and on demand.
type Updater struct {
	st      *store.Store
	cfg     Config
	feeds   []string
	trigger chan time.Time

	mu      sync.Mutex
	backoff map[string]backoff
}

type backoff struct {
	until time.Time
	delay time.Duration
}

// New returns an Updater of st. A source naming no feed is an error.
func New(st *store.Store, cfg Config) (*Updater, error) {
	var names []string
	for _, f := range update.Feeds() {
		names = append(names, f.Name())
	}
	var feeds []string
	for _, n := range names {
		if len(cfg.Sources) == 0 {
			feeds = append(feeds, n)
			continue
		}
		for _, s := range cfg.Sources {
			if strings.HasPrefix(n, s) {
				feeds = append(feeds, n)
				break
			}
		}
	}
	for _, s := range cfg.Sources {
		if !anyPrefix(names, s) {
			return nil, fmt.Errorf("updater: unknown source %q (known: %s)", s, strings.Join(names, ", "))
		}
	}
	for f := range cfg.URLs {
		if !slices.Contains(names, f) {
			return nil, fmt.Errorf("updater: URLs for unknown feed %q (known: %s)", f, strings.Join(names, ", "))
		}
	}
	if cfg.Options == (update.Options{}) {
		cfg.Options = update.DefaultOptions()
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("updater: negative interval %v", cfg.Interval)
	}
	if cfg.Owner == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		cfg.Owner = "vigil-" + hex.EncodeToString(b[:])
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Minute
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Minute
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = cfg.Interval
		if cfg.MaxBackoff <= 0 {
			cfg.MaxBackoff = time.Hour
		}
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Updater{st: st, cfg: cfg, feeds: feeds, trigger: make(chan time.Time, 1), backoff: map[string]backoff{}}, nil
}

// Feeds lists the feeds this Updater updates.
func (u *Updater) Feeds() []string { return append([]string(nil), u.feeds...) }

// Trigger asks Run for an update now: every feed not updated successfully
// (by any instance) since this call is updated. It does not block.
func (u *Updater) Trigger() {
	t := u.cfg.Now()
	for {
		select {
		case u.trigger <- t:
			return
		default:
			select { // replace an older pending trigger
			case <-u.trigger:
			default:
			}
		}
	}
}

// Run updates on schedule and on Trigger until ctx ends.
func (u *Updater) Run(ctx context.Context) error {
	for {
		var timer <-chan time.Time
		stop := func() bool { return false }
		if u.cfg.Interval > 0 {
			runs := u.round(ctx, time.Time{})
			t := time.NewTimer(u.wait(ctx, runs))
			timer = t.C
			stop = t.Stop
		}
		select {
		case <-ctx.Done():
			stop()
			return ctx.Err()
		case since := <-u.trigger:
			stop()
			u.round(ctx, since)
		case <-timer:
		}
	}
}

// Update updates, now, every feed not updated successfully since since
// (by any instance), and returns what it did.
func (u *Updater) Update(ctx context.Context, since time.Time) []FeedRun {
	if since.IsZero() {
		since = u.cfg.Now()
	}
	return u.round(ctx, since)
}

// Due runs one scheduled round: the feeds whose interval has passed and
// that are not backing off.
func (u *Updater) Due(ctx context.Context) []FeedRun { return u.round(ctx, time.Time{}) }

// round updates the due feeds: with since set, those not updated since
// then (a trigger); otherwise those whose interval passed.
func (u *Updater) round(ctx context.Context, since time.Time) []FeedRun {
	var runs []FeedRun
	var updated []string
	for _, f := range u.feeds {
		if ctx.Err() != nil {
			break
		}
		r := u.feed(ctx, f, since)
		if r.Outcome == Updated {
			updated = append(updated, f)
		}
		runs = append(runs, r)
	}
	if len(updated) > 0 && u.cfg.AfterUpdate != nil {
		u.cfg.AfterUpdate(ctx, updated)
	}
	return runs
}

func (u *Updater) feed(ctx context.Context, f string, since time.Time) FeedRun {
	log := u.cfg.Log.With("feed", f)
	now := u.cfg.Now()
	if since.IsZero() {
		u.mu.Lock()
		b := u.backoff[f]
		u.mu.Unlock()
		if now.Before(b.until) {
			return FeedRun{Feed: f, Outcome: BackingOff}
		}
	}
	if fresh, err := u.fresh(ctx, f, since, now); err != nil || fresh {
		return FeedRun{Feed: f, Outcome: Fresh, Err: err}
	}
	lock := "updater/" + f
	ok, err := u.st.TryLock(ctx, lock, u.cfg.Owner, u.cfg.LockTTL)
	if err != nil {
		return FeedRun{Feed: f, Outcome: Failed, Err: err}
	}
	if !ok {
		log.Debug("feed locked by another instance")
		return FeedRun{Feed: f, Outcome: Busy}
	}
	defer func() {
		if err := u.st.Unlock(context.WithoutCancel(ctx), lock, u.cfg.Owner); err != nil {
			log.Warn("could not release the updater lock", "err", err)
		}
	}()
	// Another instance may have finished this feed while we waited.
	if fresh, err := u.fresh(ctx, f, since, now); err != nil || fresh {
		return FeedRun{Feed: f, Outcome: Fresh, Err: err}
	}
	stop := u.renew(ctx, lock, log)
	log.Info("updating feed")
	results := update.Update(ctx, u.st, []string{f}, u.cfg.URLs, u.cfg.Options)
	stop()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	failure := errors.Join(errs...)
	if len(results) == 0 {
		failure = fmt.Errorf("feed %s has no URLs to update from", f)
	}
	at := u.cfg.Now()
	if err := u.st.RecordUpdate(context.WithoutCancel(ctx), f, at, failure); err != nil {
		failure = errors.Join(failure, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if failure != nil {
		b := u.backoff[f]
		b.delay = min(max(2*b.delay, u.cfg.MinBackoff), u.cfg.MaxBackoff)
		b.until = at.Add(b.delay)
		u.backoff[f] = b
		log.Warn("feed update failed", "err", failure, "retry_in", b.delay)
		return FeedRun{Feed: f, Outcome: Failed, Results: results, Err: failure}
	}
	delete(u.backoff, f)
	log.Info("feed updated", "documents", len(results))
	return FeedRun{Feed: f, Outcome: Updated, Results: results}
}

// fresh reports whether feed f needs no update: updated since since (a
// trigger), or within the interval (a scheduled round).
func (u *Updater) fresh(ctx context.Context, f string, since, now time.Time) (bool, error) {
	st, err := u.st.UpdaterState(ctx, f)
	if err != nil {
		return false, err
	}
	if st.LastSuccess.IsZero() {
		return false, nil
	}
	if !since.IsZero() {
		// The store keeps milliseconds.
		return !st.LastSuccess.Before(since.Truncate(time.Microsecond)), nil
	}
	return now.Before(st.LastSuccess.Add(u.cfg.Interval)), nil
}

// renew keeps the lock while an update runs; the returned func stops it.
func (u *Updater) renew(ctx context.Context, lock string, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(u.cfg.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ok, err := u.st.TryLock(ctx, lock, u.cfg.Owner, u.cfg.LockTTL); !ok || err != nil {
					log.Warn("lost the updater lock while updating", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// wait is how long Run sleeps before its next scheduled round: until the
// earliest feed is due, at least a second, at most the interval.
func (u *Updater) wait(ctx context.Context, runs []FeedRun) time.Duration {
	now := u.cfg.Now()
	next := u.cfg.Interval
	for _, r := range runs {
		var at time.Time
		switch r.Outcome {
		case BackingOff, Failed:
			u.mu.Lock()
			at = u.backoff[r.Feed].until
			u.mu.Unlock()
		case Busy:
			at = now.Add(u.cfg.MinBackoff)
		default:
			st, err := u.st.UpdaterState(ctx, r.Feed)
			if err != nil {
				at = now.Add(u.cfg.MinBackoff)
			} else {
				at = st.LastSuccess.Add(u.cfg.Interval)
			}
		}
		next = min(next, at.Sub(now))
	}
	return max(next, time.Second)
}

func anyPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}
