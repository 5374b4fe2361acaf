package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-scanner/vigil/internal/api"
	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Clair v1 wire shapes (api/v1/models.go): PascalCase, empty fields left out.
type (
	// Notification is the body of GET /v1/notifications/{name}.
	Notification struct {
		Name     string                   `json:"Name,omitempty"`
		Created  string                   `json:"Created,omitempty"`
		Notified string                   `json:"Notified,omitempty"`
		Deleted  string                   `json:"Deleted,omitempty"`
		Limit    int                      `json:"Limit,omitempty"`
		Page     string                   `json:"Page,omitempty"`
		NextPage string                   `json:"NextPage,omitempty"`
		Old      *VulnerabilityWithLayers `json:"Old,omitempty"`
		New      *VulnerabilityWithLayers `json:"New,omitempty"`
	}
	// VulnerabilityWithLayers is one side of a notification. Images is a
	// vigil addition: the IDs of the images whose layers are listed.
	VulnerabilityWithLayers struct {
		Vulnerability                         *Vulnerability     `json:"Vulnerability,omitempty"`
		OrderedLayersIntroducingVulnerability []OrderedLayerName `json:"OrderedLayersIntroducingVulnerability,omitempty"`
		LayersIntroducingVulnerability        []string           `json:"LayersIntroducingVulnerability,omitempty"`
		Images                                []string           `json:"Images,omitempty"`
	}
	// OrderedLayerName is a layer with its index in the notification.
	OrderedLayerName struct {
		Index     int64  `json:"Index"`
		LayerName string `json:"LayerName"`
	}
	// Vulnerability is Clair's vulnerability.
	Vulnerability struct {
		Name          string    `json:"Name,omitempty"`
		NamespaceName string    `json:"NamespaceName,omitempty"`
		Description   string    `json:"Description,omitempty"`
		Link          string    `json:"Link,omitempty"`
		Severity      string    `json:"Severity,omitempty"`
		FixedIn       []Feature `json:"FixedIn,omitempty"`
	}
	// Feature is a package with the version fixing a vulnerability ("None":
	// not fixed).
	Feature struct {
		Name          string `json:"Name,omitempty"`
		NamespaceName string `json:"NamespaceName,omitempty"`
		VersionFormat string `json:"VersionFormat,omitempty"`
		Version       string `json:"Version,omitempty"`
	}
)

// MaxLimit caps the limit of a notification page.
const MaxLimit = 1000

// Handler serves Clair's GET and DELETE /v1/notifications/{name}.
type Handler struct {
	Store *store.Store
	Pages *pagetoken.Codec // must be shared by all instances behind one address
	Log   *slog.Logger
	Now   func() time.Time // clock for DELETE; time.Now when nil
}

// page is a position in a notification's layer lists: the last index sent
// of each side.
type page struct {
	Name string `json:"n"`
	Old  int64  `json:"o"`
	New  int64  `json:"w"`
}

// GetNotification answers GET /v1/notifications/{name}?limit=N[&page=T]:
// the notification with up to limit layers of each side after the page's
// position. limit is required (1 or more; above MaxLimit counts as
// MaxLimit); Page echoes the current position (made up for the first page)
// and NextPage is set while either side has more layers.
func (h *Handler) GetNotification(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit: want a positive integer, got %q", q.Get("limit")))
		return
	}
	limit = min(limit, MaxLimit)
	pos := page{Name: name}
	if tok := q.Get("page"); tok != "" {
		if err := h.Pages.Decode(tok, &pos); err != nil {
			api.WriteError(w, http.StatusBadRequest, "page: "+err.Error())
			return
		}
		if pos.Name != name {
			api.WriteError(w, http.StatusBadRequest, "page: the token belongs to another notification")
			return
		}
	}
	ctx := r.Context()
	n, err := h.Store.Notification(ctx, name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := Notification{Name: n.Name, Created: unix(n.Created), Notified: unix(n.Notified), Deleted: unix(n.Deleted), Limit: limit}
	if out.Page, err = h.Pages.Encode(pos); err != nil {
		h.fail(w, r, err)
		return
	}
	next := pos
	more := false
	for _, side := range []struct {
		name  string
		vuln  []byte
		after int64
		dst   **VulnerabilityWithLayers
		last  *int64
	}{
		{"old", n.Old, pos.Old, &out.Old, &next.Old},
		{"new", n.New, pos.New, &out.New, &next.New},
	} {
		if side.vuln == nil {
			continue
		}
		var v Vulnerability
		if err := json.Unmarshal(side.vuln, &v); err != nil {
			h.fail(w, r, fmt.Errorf("notification %s: %s vulnerability: %w", name, side.name, err))
			return
		}
		layers, m, err := h.Store.NotificationLayers(ctx, name, side.name, side.after, limit)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		vl := &VulnerabilityWithLayers{Vulnerability: &v}
		seenL, seenI := map[string]bool{}, map[string]bool{}
		for _, l := range layers {
			vl.OrderedLayersIntroducingVulnerability = append(vl.OrderedLayersIntroducingVulnerability, OrderedLayerName{Index: l.Index, LayerName: l.Layer})
			if !seenL[l.Layer] {
				seenL[l.Layer] = true
				vl.LayersIntroducingVulnerability = append(vl.LayersIntroducingVulnerability, l.Layer)
			}
			if l.Image != "" && !seenI[l.Image] {
				seenI[l.Image] = true
				vl.Images = append(vl.Images, l.Image)
			}
			*side.last = l.Index
		}
		*side.dst = vl
		more = more || m
	}
	if more {
		if out.NextPage, err = h.Pages.Encode(next); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"Notification": out})
}

// DeleteNotification answers DELETE /v1/notifications/{name}: it marks the
// notification read, which stops its re-delivery (200, no body), or 404.
func (h *Handler) DeleteNotification(w http.ResponseWriter, r *http.Request, name string) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if err := h.Store.DeleteNotification(r.Context(), name, now()); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		api.WriteError(w, http.StatusNotFound, err.Error())
		return
	}
	if h.Log != nil {
		h.Log.Error("notification request failed", "path", r.URL.Path, "err", err)
	}
	api.WriteError(w, http.StatusInternalServerError, "internal error reading the notification")
}

func unix(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}
