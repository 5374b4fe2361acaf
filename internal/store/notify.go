package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// notifySchema holds the updater lock and notifications (migration 3):
//   - store_lock: named locks with an owner and an expiry (Unix ms), shared
//     by every instance on one database (the updater's per-feed lock, the
//     notifier's per-notification delivery lock);
//   - updater_state: per feed, when it last updated successfully (Unix µs,
//     0 for never) and the outcome of its last attempt;
//   - match_state: per indexed subject (an image or a Clair layer), the
//     findings it had at the notifier's last pass, as the notifier encodes
//     them;
//   - notification and notification_layer: Clair's notifications, the old
//     and new vulnerability (JSON, NULL when absent) and, per side, the
//     layers introducing it, in index order.
const notifySchema = `CREATE TABLE store_lock (
		name  TEXT PRIMARY KEY,
		owner TEXT NOT NULL,
		until BIGINT NOT NULL
	);
	CREATE TABLE updater_state (
		feed         TEXT PRIMARY KEY,
		last_success BIGINT NOT NULL,
		last_attempt BIGINT NOT NULL,
		last_error   TEXT NOT NULL
	);
	CREATE TABLE match_state (
		subject    TEXT PRIMARY KEY,
		state      {{blob}} NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE TABLE notification (
		name        TEXT PRIMARY KEY,
		created_at  BIGINT NOT NULL,
		notified_at BIGINT,
		deleted_at  BIGINT,
		old_vuln    {{blob}},
		new_vuln    {{blob}}
	);
	CREATE INDEX notification_due ON notification (deleted_at, notified_at);
	CREATE TABLE notification_layer (
		notification TEXT NOT NULL REFERENCES notification(name) ON DELETE CASCADE,
		side         TEXT NOT NULL,
		idx          BIGINT NOT NULL,
		layer        TEXT NOT NULL,
		image        TEXT NOT NULL,
		PRIMARY KEY (notification, side, idx)
	)`

// TryLock takes, or renews when owner already holds it, the lock called
// name until now+ttl. It reports false when another owner holds an
// unexpired lock of that name. One statement, atomic on both dialects.
func (s *Store) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || owner == "" {
		return false, errors.New("lock: empty name or owner")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("lock %s: ttl %v is not positive", name, ttl)
	}
	t := time.Now()
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO store_lock (name, owner, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE store_lock.owner = excluded.owner OR store_lock.until < ?`),
		name, owner, t.Add(ttl).UnixMilli(), t.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
	return n == 1, nil
}

// Unlock releases the lock called name if owner holds it.
func (s *Store) Unlock(ctx context.Context, name, owner string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM store_lock WHERE name = ? AND owner = ?`), name, owner); err != nil {
		return fmt.Errorf("unlock %s: %w", name, err)
	}
	return nil
}

// UpdaterState is what the store knows of one feed's updates.
type UpdaterState struct {
	Feed        string
	LastSuccess time.Time // zero: never updated successfully
	LastAttempt time.Time // zero: never attempted
	LastError   string    // "" when the last attempt succeeded
}

// UpdaterState returns the state of feed (zero times when never updated).
func (s *Store) UpdaterState(ctx context.Context, feed string) (UpdaterState, error) {
	st := UpdaterState{Feed: feed}
	var ok, attempt int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT last_success, last_attempt, last_error FROM updater_state WHERE feed = ?`), feed).
		Scan(&ok, &attempt, &st.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("updater state of %s: %w", feed, err)
	}
	st.LastSuccess, st.LastAttempt = usTime(ok), usTime(attempt)
	return st, nil
}

// RecordUpdate records an update attempt of feed at time at: a success
// (failure == nil) moves its last success to at; a failure keeps it.
func (s *Store) RecordUpdate(ctx context.Context, feed string, at time.Time, failure error) error {
	var ok int64
	msg := ""
	if failure == nil {
		ok = at.UnixMicro()
	} else {
		msg = failure.Error()
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO updater_state (feed, last_success, last_attempt, last_error) VALUES (?, ?, ?, ?)
		ON CONFLICT (feed) DO UPDATE SET last_attempt = excluded.last_attempt, last_error = excluded.last_error,
			last_success = CASE WHEN excluded.last_success > 0 THEN excluded.last_success ELSE updater_state.last_success END`),
		feed, ok, at.UnixMicro(), msg)
	if err != nil {
		return fmt.Errorf("record update of %s: %w", feed, err)
	}
	return nil
}

// ImageReports calls fn with each cached image index report of the given
// indexer version, in image ID order.
func (s *Store) ImageReports(ctx context.Context, indexer string, fn func(imageID string, report []byte) error) error {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT image_id, report FROM image_index WHERE indexer = ? ORDER BY image_id`), indexer)
	if err != nil {
		return fmt.Errorf("list image reports: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return err
		}
		if err := fn(id, b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ClairLayerNames lists the stored Clair v1 layers, by name.
func (s *Store) ClairLayerNames(ctx context.Context) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT name FROM clair_layer ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list clair layers: %w", err)
	}
	return out, nil
}

// queryStrings runs a query of one text column.
func (s *Store) queryStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// MatchStates returns every subject's stored match state.
func (s *Store) MatchStates(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT subject, state FROM match_state`)
	if err != nil {
		return nil, fmt.Errorf("match states: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var subject string
		var b []byte
		if err := rows.Scan(&subject, &b); err != nil {
			return nil, err
		}
		out[subject] = b
	}
	return out, rows.Err()
}

// NotificationLayer is one layer introducing a notification's
// vulnerability; Image names the image (ID) it was found in, "" for a
// Clair layer.
type NotificationLayer struct {
	Index int64
	Layer string
	Image string
}

// NewNotification is a notification to create.
type NewNotification struct {
	Name      string
	Old, New  []byte // JSON of the vulnerability before and after; nil when absent
	OldLayers []NotificationLayer
	NewLayers []NotificationLayer // Index is assigned on insert
}

// Notification is a stored notification (layers are read by page).
type Notification struct {
	Name                       string
	Created, Notified, Deleted time.Time // zero when not (yet)
	Old, New                   []byte
}

// SaveMatchPass stores, in one transaction, the notifier's pass at time at:
// the new match states (replacing those of the same subjects), the removal
// of the states of subjects in drop, and the notifications it created. A
// failure changes nothing, so the next pass computes the same changes again.
func (s *Store) SaveMatchPass(ctx context.Context, at time.Time, states map[string][]byte, drop []string, notes []NewNotification) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for subject, b := range states {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO match_state (subject, state, updated_at) VALUES (?, ?, ?)
				ON CONFLICT (subject) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`), subject, b, at.Unix()); err != nil {
				return fmt.Errorf("match state of %s: %w", subject, err)
			}
		}
		for _, subject := range drop {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM match_state WHERE subject = ?`), subject); err != nil {
				return fmt.Errorf("drop match state of %s: %w", subject, err)
			}
		}
		ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO notification_layer (notification, side, idx, layer, image) VALUES (?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, n := range notes {
			if n.Name == "" || (n.Old == nil && n.New == nil) {
				return fmt.Errorf("notification %q has no name or no vulnerability", n.Name)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO notification (name, created_at, old_vuln, new_vuln) VALUES (?, ?, ?, ?)`),
				n.Name, at.Unix(), n.Old, n.New); err != nil {
				return fmt.Errorf("notification %s: %w", n.Name, err)
			}
			for side, layers := range map[string][]NotificationLayer{"old": n.OldLayers, "new": n.NewLayers} {
				for i, l := range layers {
					if _, err := ins.ExecContext(ctx, n.Name, side, i+1, l.Layer, l.Image); err != nil {
						return fmt.Errorf("notification %s: layer %s: %w", n.Name, l.Layer, err)
					}
				}
			}
		}
		return nil
	})
}

// Notification returns the notification called name, or ErrNotFound.
func (s *Store) Notification(ctx context.Context, name string) (Notification, error) {
	n := Notification{Name: name}
	var created int64
	var notified, deleted sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT created_at, notified_at, deleted_at, old_vuln, new_vuln FROM notification WHERE name = ?`), name).
		Scan(&created, &notified, &deleted, &n.Old, &n.New)
	if errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("notification %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return n, fmt.Errorf("notification %s: %w", name, err)
	}
	n.Created = time.Unix(created, 0)
	if notified.Valid {
		n.Notified = time.Unix(notified.Int64, 0)
	}
	if deleted.Valid {
		n.Deleted = time.Unix(deleted.Int64, 0)
	}
	return n, nil
}

// NotificationLayers returns up to limit layers of one side ("old" or
// "new") of notification name with an index above after, in index order,
// and whether more follow.
func (s *Store) NotificationLayers(ctx context.Context, name, side string, after int64, limit int) ([]NotificationLayer, bool, error) {
	if side != "old" && side != "new" {
		return nil, false, fmt.Errorf("notification side %q: want old or new", side)
	}
	if limit <= 0 {
		return nil, false, fmt.Errorf("notification layers: limit %d is not positive", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT idx, layer, image FROM notification_layer
		WHERE notification = ? AND side = ? AND idx > ? ORDER BY idx LIMIT ?`), name, side, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("notification %s layers: %w", name, err)
	}
	defer rows.Close()
	var out []NotificationLayer
	for rows.Next() {
		var l NotificationLayer
		if err := rows.Scan(&l.Index, &l.Layer, &l.Image); err != nil {
			return nil, false, err
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// DeleteNotification marks notification name deleted (read) at time at,
// which stops its re-delivery; ErrNotFound when there is no such
// undeleted notification.
func (s *Store) DeleteNotification(ctx context.Context, name string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE notification SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL`), at.Unix(), name)
	if err != nil {
		return fmt.Errorf("delete notification %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("notification %s: %w", name, ErrNotFound)
	}
	return nil
}

// DueNotifications returns up to limit undeleted notifications never
// delivered or last delivered before notifiedBefore, oldest first.
func (s *Store) DueNotifications(ctx context.Context, notifiedBefore time.Time, limit int) ([]string, error) {
	out, err := s.queryStrings(ctx, `SELECT name FROM notification
		WHERE deleted_at IS NULL AND (notified_at IS NULL OR notified_at < ?)
		ORDER BY created_at, name LIMIT ?`, notifiedBefore.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("due notifications: %w", err)
	}
	return out, nil
}

// MarkNotified records the delivery of notification name at time at.
func (s *Store) MarkNotified(ctx context.Context, name string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE notification SET notified_at = ? WHERE name = ?`), at.Unix(), name); err != nil {
		return fmt.Errorf("mark notification %s delivered: %w", name, err)
	}
	return nil
}

// usTime reads the microsecond times of updater_state: finer than the
// interval between a trigger and the update it starts, so "updated since"
// never mistakes an older update for a newer one.
func usTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
