// Package notify tells a webhook when an update of the advisories changes
// what affects the indexed images and Clair layers, the way Clair v1's
// notifier does.
//
// Rules:
//   - After an update, Pass matches every indexed subject (each image index
//     report cached in the store, each Clair v1 layer with its ancestry)
//     against the current advisories and compares the findings, keyed by
//     (namespace, vulnerability, package, version, introducing layer), with
//     those of the previous pass, kept in the store per subject.
//   - Each vulnerability that appeared in or disappeared from any subject
//     yields one notification in Clair's shape: Old is the vulnerability as
//     found before with the layers that introduced it then, New as found now
//     with the layers now (either absent when it affected nothing). States
//     keep no descriptions, so Old shows the current one when the
//     vulnerability still affects something, and none otherwise.
//   - A subject seen for the first time is recorded without notifications,
//     and so are findings from a feed whose advisories were not yet in the
//     store at the subject's previous pass: the first import of a feed
//     notifies nothing, later ones do.
//   - A pass's notifications and new states are saved in one transaction,
//     before any delivery; a failed pass changes nothing.
//   - Delivery POSTs {"Notification":{"Name":…}} to the webhook, up to
//     Attempts times with exponential backoff, and marks the notification
//     notified on a 2xx. Undeleted notifications are sent again every
//     RenotifyInterval; DELETE stops that. Each delivery holds a store lock
//     on the notification, so instances sharing a database send it once.
package notify

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Config configures a Notifier.
type Config struct {
	Endpoint string // webhook URL; "" creates notifications without sending them
	// Attempts per delivery round (default 5); RenotifyInterval between
	// re-sends of an undeleted notification (default 2 hours).
	Attempts         int
	RenotifyInterval time.Duration
	// Backoff is the delay after the first failed attempt, doubling up to
	// MaxBackoff (defaults 1 second and 15 minutes).
	Backoff, MaxBackoff time.Duration
	// PollInterval is how often Run looks for due notifications (default
	// 5 minutes); a pass that creates notifications wakes it at once.
	PollInterval time.Duration
	Client       *http.Client // default: 5-second timeout
	Owner        string       // lock owner id of this instance; random when empty
	LockTTL      time.Duration
	Log          *slog.Logger
	Now          func() time.Time                                 // clock
	Sleep        func(ctx context.Context, d time.Duration) error // backoff waits
}

// Notifier creates and delivers notifications.
type Notifier struct {
	st   *store.Store
	cfg  Config
	wake chan struct{}
}

// New returns a Notifier of st.
func New(st *store.Store, cfg Config) (*Notifier, error) {
	if cfg.Attempts < 0 || cfg.RenotifyInterval < 0 || cfg.Backoff < 0 || cfg.PollInterval < 0 {
		return nil, errors.New("notify: negative attempts or interval")
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 5
	}
	if cfg.RenotifyInterval == 0 {
		cfg.RenotifyInterval = 2 * time.Hour
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 15 * time.Minute
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Owner == "" {
		cfg.Owner = "vigil-" + newName()
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Notifier{st: st, cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// finding is one finding of a subject as a pass records it.
type finding struct {
	Namespace string `json:"ns"`
	Vuln      string `json:"vuln"`
	Package   string `json:"pkg"`     // installed package
	Version   string `json:"version"` // installed version
	Layer     string `json:"layer"`   // introducing layer
	Source    string `json:"source"`  // feed
	AdvPkg    string `json:"adv_pkg"` // package the advisory names
	Format    string `json:"format"`
	Fixed     string `json:"fixed,omitempty"`
	Severity  string `json:"severity,omitempty"`
	Link      string `json:"link,omitempty"`

	description string // current findings only; not stored
}

func (f finding) key() string {
	return f.Namespace + "\x00" + f.Vuln + "\x00" + f.Package + "\x00" + f.Version + "\x00" + f.Layer
}

func (f finding) vulnKey() vulnKey { return vulnKey{f.Namespace, f.Vuln} }

type vulnKey struct{ ns, name string }

// state is a subject's record: the feeds in the store when it was taken,
// and the findings.
type state struct {
	Sources  []string  `json:"sources"`
	Findings []finding `json:"findings"`
}

// subject is an indexed image or Clair layer.
type subject struct {
	key   string // match_state key
	image string // image ID, "" for a Clair layer
	dist  *model.Distribution
	pkgs  []model.Package
}

// Pass compares every subject's current findings with the last pass and
// stores the notifications of what changed; it returns their names. Passes
// of all instances on one database run one at a time.
func (n *Notifier) Pass(ctx context.Context) ([]string, error) {
	const lock = "notifier/pass"
	for {
		ok, err := n.st.TryLock(ctx, lock, n.cfg.Owner, n.cfg.LockTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			break
		}
		if err := n.cfg.Sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	defer n.st.Unlock(context.WithoutCancel(ctx), lock, n.cfg.Owner)
	names, err := n.pass(ctx)
	if err != nil {
		return nil, fmt.Errorf("notifier pass: %w", err)
	}
	if len(names) > 0 {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
	return names, nil
}

func (n *Notifier) pass(ctx context.Context) ([]string, error) {
	// The feeds present are read before matching: a feed imported while
	// the pass runs counts as new at the next one, so its first import
	// stays silent.
	scopes, err := n.st.Scopes(ctx)
	if err != nil {
		return nil, err
	}
	sources := map[string]bool{}
	for _, sc := range scopes {
		sources[sc.Source] = true
	}
	subjects, err := n.subjects(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := n.st.MatchStates(ctx)
	if err != nil {
		return nil, err
	}
	prev := map[string]state{}
	for k, b := range stored {
		var s state
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("match state of %s: %w", k, err)
		}
		prev[k] = s
	}
	cur := map[string][]finding{}
	changed := map[vulnKey]bool{}
	for _, sub := range subjects {
		res, err := match.Match(ctx, n.st, sub.dist, sub.pkgs)
		if err != nil {
			return nil, fmt.Errorf("match %s: %w", sub.key, err)
		}
		fs := findings(res.Findings)
		cur[sub.key] = fs
		old, seen := prev[sub.key]
		if !seen {
			continue
		}
		known := map[string]bool{}
		for _, s := range old.Sources {
			known[s] = true
		}
		before := map[string]bool{}
		for _, f := range old.Findings {
			before[f.key()] = true
		}
		now := map[string]bool{}
		for _, f := range fs {
			now[f.key()] = true
			if !before[f.key()] && known[f.Source] {
				changed[f.vulnKey()] = true
			}
		}
		for _, f := range old.Findings {
			if !now[f.key()] {
				changed[f.vulnKey()] = true
			}
		}
	}
	var notes []store.NewNotification
	var names []string
	for _, vk := range sortedKeys(changed) {
		note := store.NewNotification{Name: newName()}
		var oldF, newF []finding
		for _, sub := range subjects {
			for _, f := range prev[sub.key].Findings {
				if f.vulnKey() == vk {
					oldF = append(oldF, f)
					note.OldLayers = addLayer(note.OldLayers, f.Layer, sub.image)
				}
			}
			for _, f := range cur[sub.key] {
				if f.vulnKey() == vk {
					newF = append(newF, f)
					note.NewLayers = addLayer(note.NewLayers, f.Layer, sub.image)
				}
			}
		}
		// States keep no descriptions: the old side shows the current
		// description of the same vulnerability, when it still affects
		// something.
		var desc string
		for _, f := range newF {
			desc = cmp.Or(desc, f.description)
		}
		for i := range oldF {
			oldF[i].description = desc
		}
		if note.Old, err = vulnJSON(oldF); err != nil {
			return nil, err
		}
		if note.New, err = vulnJSON(newF); err != nil {
			return nil, err
		}
		notes = append(notes, note)
		names = append(names, note.Name)
	}
	srcList := make([]string, 0, len(sources))
	for s := range sources {
		srcList = append(srcList, s)
	}
	sort.Strings(srcList)
	states := map[string][]byte{}
	for _, sub := range subjects {
		b, err := json.Marshal(state{Sources: srcList, Findings: cur[sub.key]})
		if err != nil {
			return nil, err
		}
		states[sub.key] = b
	}
	var drop []string
	for k := range prev {
		if _, ok := cur[k]; !ok {
			drop = append(drop, k)
		}
	}
	if err := n.st.SaveMatchPass(ctx, n.cfg.Now(), states, drop, notes); err != nil {
		return nil, err
	}
	if len(names) > 0 {
		n.cfg.Log.Info("created notifications", "count", len(names), "subjects", len(subjects))
	}
	return names, nil
}

// subjects lists the indexed images and Clair layers.
func (n *Notifier) subjects(ctx context.Context) ([]subject, error) {
	var out []subject
	err := n.st.ImageReports(ctx, index.Version, func(id string, b []byte) error {
		var r index.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("image %s: index report: %w", id, err)
		}
		out = append(out, subject{key: "image:" + id, image: id, dist: r.Distribution, pkgs: r.Packages})
		return nil
	})
	if err != nil {
		return nil, err
	}
	layers, err := n.st.ClairLayerNames(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range layers {
		chain, err := n.st.ClairAncestry(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		r := &index.Report{Image: name}
		results := make([]*index.Result, len(chain))
		for i, l := range chain {
			results[i] = &index.Result{}
			if err := json.Unmarshal(l.Result, results[i]); err != nil {
				return nil, fmt.Errorf("clair layer %s: result: %w", l.Name, err)
			}
			r.Layers = append(r.Layers, index.LayerInfo{DiffID: l.Name})
		}
		if err := index.Compose(r, results); err != nil {
			return nil, fmt.Errorf("clair layer %s: %w", name, err)
		}
		out = append(out, subject{key: "layer:" + name, dist: r.Distribution, pkgs: r.Packages})
	}
	return out, nil
}

func findings(fs []model.Finding) []finding {
	out := make([]finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, finding{
			Namespace: f.Advisory.Namespace, Vuln: f.Advisory.ID,
			Package: f.Package.Name, Version: f.Package.Version, Layer: f.Package.Layer,
			Source: f.Advisory.Source, AdvPkg: f.Advisory.Package, Format: f.Advisory.VersionFormat,
			Fixed: f.Advisory.FixedVersion, Severity: f.Advisory.Severity, Link: f.Advisory.Link,
			description: f.Advisory.Description,
		})
	}
	return out
}

func addLayer(ls []store.NotificationLayer, layer, image string) []store.NotificationLayer {
	for _, l := range ls {
		if l.Layer == layer && l.Image == image {
			return ls
		}
	}
	return append(ls, store.NotificationLayer{Layer: layer, Image: image})
}

// vulnJSON is the Clair Vulnerability of a vulnerability's findings (nil
// when there are none): the most severe severity, and each advisory
// package's fixed version ("None" when unfixed) as FixedIn.
func vulnJSON(fs []finding) ([]byte, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	v := Vulnerability{Name: fs[0].Vuln, NamespaceName: fs[0].Namespace}
	seen := map[string]bool{}
	for _, f := range fs {
		if model.SeverityRank(f.Severity) >= model.SeverityRank(v.Severity) {
			v.Severity = f.Severity
		}
		v.Link = cmp.Or(v.Link, f.Link)
		v.Description = cmp.Or(v.Description, f.description)
		fixed := cmp.Or(f.Fixed, "None")
		if k := f.AdvPkg + "\x00" + fixed; !seen[k] {
			seen[k] = true
			v.FixedIn = append(v.FixedIn, Feature{Name: f.AdvPkg, NamespaceName: f.Namespace, VersionFormat: f.Format, Version: fixed})
		}
	}
	if v.Severity == "" {
		v.Severity = model.SeverityUnknown
	}
	sort.Slice(v.FixedIn, func(i, j int) bool {
		a, b := v.FixedIn[i], v.FixedIn[j]
		return a.Name < b.Name || a.Name == b.Name && a.Version < b.Version
	})
	return json.Marshal(v)
}

func sortedKeys(m map[vulnKey]bool) []vulnKey {
	out := make([]vulnKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].ns < out[j].ns || out[i].ns == out[j].ns && out[i].name < out[j].name
	})
	return out
}

// newName returns a random (version 4) UUID, as Clair names notifications.
func newName() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
