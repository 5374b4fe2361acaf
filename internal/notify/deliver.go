package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Run delivers due notifications every PollInterval, and at once after a
// pass creates some, until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := n.Deliver(ctx); err != nil && ctx.Err() == nil {
			n.cfg.Log.Warn("notification delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-n.wake:
		}
	}
}

// Deliver sends every due notification (never sent, or sent more than
// RenotifyInterval ago, and not deleted) to the webhook, each up to
// Attempts times, and returns how many were delivered. A notification
// another instance is sending is skipped.
func (n *Notifier) Deliver(ctx context.Context) (int, error) {
	if n.cfg.Endpoint == "" {
		return 0, nil
	}
	const batch = 100
	sent := 0
	tried := map[string]bool{}
	for {
		due, err := n.st.DueNotifications(ctx, n.cfg.Now().Add(-n.cfg.RenotifyInterval), batch+len(tried))
		if err != nil {
			return sent, err
		}
		var todo []string
		for _, name := range due {
			if !tried[name] {
				todo = append(todo, name)
			}
		}
		if len(todo) == 0 {
			return sent, nil
		}
		for _, name := range todo {
			tried[name] = true
			ok, err := n.deliver(ctx, name)
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
			}
		}
	}
}

// deliver sends one notification under its lock; it reports whether the
// webhook took it. Only store and context errors are returned.
func (n *Notifier) deliver(ctx context.Context, name string) (bool, error) {
	lock := "notification/" + name
	ok, err := n.st.TryLock(ctx, lock, n.cfg.Owner, n.cfg.LockTTL)
	if err != nil || !ok {
		return false, err
	}
	defer n.st.Unlock(context.WithoutCancel(ctx), lock, n.cfg.Owner)
	// Re-check under the lock: another instance may have sent it, or a
	// client deleted it, since it was listed.
	cur, err := n.st.Notification(ctx, name)
	if err != nil {
		return false, err
	}
	if !cur.Deleted.IsZero() || (!cur.Notified.IsZero() && cur.Notified.After(n.cfg.Now().Add(-n.cfg.RenotifyInterval))) {
		return false, nil
	}
	body, err := json.Marshal(map[string]any{"Notification": map[string]string{"Name": name}})
	if err != nil {
		return false, err
	}
	delay := n.cfg.Backoff
	for attempt := 1; attempt <= n.cfg.Attempts; attempt++ {
		err := n.post(ctx, body)
		if err == nil {
			n.cfg.Log.Info("notification delivered", "notification", name, "attempt", attempt)
			return true, n.st.MarkNotified(ctx, name, n.cfg.Now())
		}
		n.cfg.Log.Warn("notification delivery failed", "notification", name, "attempt", attempt, "of", n.cfg.Attempts, "err", err)
		if attempt == n.cfg.Attempts {
			break
		}
		if err := n.cfg.Sleep(ctx, delay); err != nil {
			return false, err
		}
		delay = min(2*delay, n.cfg.MaxBackoff)
	}
	return false, nil
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
