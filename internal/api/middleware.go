package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type (
	routeKey     struct{}
	requestIDKey struct{}
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	rejected prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_api_requests_total", Help: "API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clair_api_response_duration_milliseconds", Help: "API response time by route pattern and status code (Clair's name).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"route", "code"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_api_indexing_in_flight", Help: "Requests fetching and indexing layers now.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_api_indexing_rejected_total", Help: "Indexing requests answered 429 because the concurrency limit was reached.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inflight, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe gives each request an id, logs it and counts it by route.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		// Set before the timeout handler, so its 503 body is typed too.
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		// Set by the handler, which may outlive the timeout handler: atomic.
		var matched atomic.Pointer[string]
		ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey{}, id), routeKey{}, &matched)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		elapsed := time.Since(start)
		code := strconv.Itoa(sw.code)
		route := "unmatched"
		if p := matched.Load(); p != nil {
			route = *p
		}
		s.metrics.requests.WithLabelValues(route, code).Inc()
		s.metrics.duration.WithLabelValues(route, code).Observe(float64(elapsed) / float64(time.Millisecond))
		lvl := s.log.Info
		if sw.code >= 500 {
			lvl = s.log.Warn
		}
		lvl("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "route", route, "status", sw.code, "duration", elapsed.Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

// validRequestID accepts a client's id if short and printable ASCII.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// bodyCap reads request bodies whole before the handler and its timeout
// run: over maxBodySize answers 413, a body not received within the
// server's read timeout 408, a broken one 400, all with Clair's body.
func bodyCap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
		if err != nil {
			var mbe *http.MaxBytesError
			var ne net.Error
			switch {
			case errors.As(err, &mbe):
				WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
			case errors.As(err, &ne) && ne.Timeout():
				WriteError(w, http.StatusRequestTimeout, "request body not received in time: "+err.Error())
			default:
				WriteError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		next.ServeHTTP(w, r)
	})
}

// acquire takes an indexing slot, or answers 429 when none is free.
func (s *Server) acquire() (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		s.metrics.inflight.Inc()
		return func() { <-s.slots; s.metrics.inflight.Dec() }, nil
	default:
		s.metrics.rejected.Inc()
		return nil, errorf(http.StatusTooManyRequests, "%d indexing requests are already running; retry later", cap(s.slots))
	}
}

// shared runs fn once for all concurrent callers with the same key
// (in this process; the store keeps servers sharing a database from
// storing twice). fn's context outlives any one caller, so a client
// hanging up fails no other waiting on the same work; it ends a second
// after the request timeout (so that the first caller's own timeout
// answers it first). A caller whose own context ends stops waiting.
func (s *Server) shared(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := s.flight.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.Timeout+time.Second)
		defer cancel()
		return fn(fctx)
	})
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
