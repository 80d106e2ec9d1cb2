package protocoltest

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Answer is what the origin answers: a status, headers (name, value
// pairs, set in turn) and a body.
type Answer struct {
	Status int
	Header []string
	Body   string
}

// Write writes a as reverse_proxy passes an answer on: headers, status,
// body.
func (a Answer) Write(w http.ResponseWriter) {
	for i := 0; i+1 < len(a.Header); i += 2 {
		w.Header().Set(a.Header[i], a.Header[i+1])
	}
	w.WriteHeader(a.Status)
	// A client that went away is no error of the origin's.
	_, _ = io.WriteString(w, a.Body)
}

// header is the answer's headers as the client gets them.
func (a Answer) header() http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(a.Header); i += 2 {
		h.Set(a.Header[i], a.Header[i+1])
	}
	return h
}

// Origin is the origin as the handler's next handler: it reads the body
// whole, notes it and the request's headers, and answers A.
type Origin struct {
	A      Answer
	Called bool
	Header http.Header
	Body   []byte
	// hold, if set, is called once the first n bytes are read, and the
	// rest waits until it returns.
	n    int
	hold func()
}

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	o.Called, o.Header = true, r.Header.Clone()
	if o.hold != nil {
		first := make([]byte, o.n)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			return caddyhttp.Error(http.StatusBadGateway, err)
		}
		o.Body = first
		o.hold()
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil {
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	o.Body = append(o.Body, rest...)
	o.A.Write(w)
	return nil
}
