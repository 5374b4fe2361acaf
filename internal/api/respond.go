package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/store"
)

// httpError is an error with the status it answers.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// clairError is Clair's error envelope.
type clairError struct {
	Error struct {
		Message string
		Type    string `json:",omitempty"`
	}
}

// timeoutBody is Clair's answer (503) to a request past its deadline.
const timeoutBody = `{"Error":{"Message":"Clair failed to respond within the configured timeout window.","Type":"Timeout"}}`

// writeErr answers err with its status and Clair's error body. Errors
// without a status are logged and answer 500 without their detail. Past
// the request's deadline, whatever failed, the answer is Clair's timeout
// (the handler may finish as the timeout handler gives up on it).
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, timeoutBody)
		return
	}
	var he *httpError
	var fe *fetchError
	switch {
	case errors.As(err, &he):
	case errors.As(err, &fe):
		he = &httpError{http.StatusBadRequest, fe.Error()}
	case errors.Is(err, store.ErrNotFound):
		he = &httpError{http.StatusNotFound, err.Error()}
	case errors.Is(err, pagetoken.ErrInvalid), errors.Is(err, pagetoken.ErrExpired):
		he = &httpError{http.StatusBadRequest, "page: " + err.Error()}
	case r.Context().Err() != nil:
		he = &httpError{http.StatusServiceUnavailable, "request cancelled or timed out: " + r.Context().Err().Error()}
	default:
		id := requestID(r.Context())
		s.log.Error("request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{http.StatusInternalServerError, "internal error (request id " + id + ")"}
	}
	WriteError(w, he.code, he.msg)
}

// WriteError answers Clair's error body {"Error":{"Message":msg}}.
func WriteError(w http.ResponseWriter, code int, msg string) {
	var body clairError
	body.Error.Message = msg
	WriteJSON(w, code, body)
}

// WriteJSON answers v as JSON with Clair's content type.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"Error":{"Message":"could not encode the response"}}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// decodeBody reads a JSON request body (read whole by bodyCap) into v,
// refusing trailing data; a malformed body answers 400. As Clair, the
// Content-Type is not checked and unknown fields are ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	// Anything but white space after the value is another (or broken) one.
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return errorf(http.StatusBadRequest, "malformed JSON body: data after the JSON value")
	}
	return nil
}
