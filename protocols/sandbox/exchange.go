package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// Exchange implements protocol.Sessions.
func (s *Sandbox) Exchange(r *http.Request) (*protocol.Exchange, bool) {
	rt := s.routeOf(r)
	switch rt.kind {
	case routeCreate:
		return s.create(rt), true
	case routePart:
		return part(rt), true
	case routeComplete:
		return &protocol.Exchange{Key: key(rt.sandbox, rt.uploadID), ReadBody: true, Answer: learnObject}, true
	case routeAbort:
		return abort(rt), true
	case routeStatus:
		return status(rt), true
	}
	return nil, false
}

// create reads a session's creation: its 201 answer is the session object,
// which opens the session with its length and parts.
func (s *Sandbox) create(rt route) *protocol.Exchange {
	idle := s.Idle()
	return &protocol.Exchange{ReadBody: true, Answer: func(a *protocol.Answered) {
		if a.Status != http.StatusCreated {
			return
		}
		obj, ok := ParseObject(a.Body)
		if !ok {
			return
		}
		rec := a.Open(key(rt.sandbox, obj.UploadID), progress.SessionSpec{Total: obj.ContentLength, Parts: obj.PartCount, Idle: idle})
		if rec == nil {
			return
		}
		keep(a, rec, obj)
	}}
}

// part reads a part's PUT: its body is part n of the session, and a 200
// answer accepts it (the session object comes with it).
func part(rt route) *protocol.Exchange {
	return &protocol.Exchange{
		Key:      key(rt.sandbox, rt.uploadID),
		Stream:   true,
		Part:     rt.part,
		From:     -1,
		ReadBody: true,
		Answer: func(a *protocol.Answered) {
			rec := a.Session
			if rec == nil {
				return
			}
			if a.Status < 200 || a.Status >= 300 {
				a.Accepted = false
				a.EndStream()
				rec.SetError(partRefusal(rt.part, a))
				return
			}
			// Counted as accepted before the object that says so shows.
			a.EndStream()
			rec.SetError("")
			if obj, ok := ParseObject(a.Body); ok {
				keep(a, rec, obj)
			}
		},
	}
}

// abort reads a session's DELETE: answered 2xx, the session is aborted.
func abort(rt route) *protocol.Exchange {
	return &protocol.Exchange{Key: key(rt.sandbox, rt.uploadID), ReadBody: true, Answer: func(a *protocol.Answered) {
		if a.Session == nil || a.Status < 200 || a.Status >= 300 {
			return
		}
		if obj, ok := ParseObject(a.Body); ok {
			keep(a, a.Session, obj)
		}
		a.End(progress.SessionEnded(progress.Aborted, "aborted by the client", a.Status))
	}}
}

// status reads the status route: its 200 answer, for a session the proxy
// tracks under the request's credential, gets the live view laid over it.
// Any other answer passes as the origin sent it.
func status(rt route) *protocol.Exchange {
	return &protocol.Exchange{Key: key(rt.sandbox, rt.uploadID), Rewrite: true, Status: true, Answer: func(a *protocol.Answered) {
		if a.Session == nil || a.Status != http.StatusOK {
			return
		}
		obj, ok := ParseObject(a.Body)
		if !ok {
			return
		}
		keep(a, a.Session, obj)
		a.Replace = Overlay(a.Body, a.View())
	}}
}

// learnObject takes the session object of a success answer (complete).
func learnObject(a *protocol.Answered) {
	if a.Session == nil || a.Status < 200 || a.Status >= 300 {
		return
	}
	if obj, ok := ParseObject(a.Body); ok {
		keep(a, a.Session, obj)
	}
}

// keep makes obj, whose bytes are a.Body, the session's last object, and
// ends the session if obj says it has ended. The same object again
// changes nothing: watchers hear of a change, and the origin's answer to
// the status request of an idle watched session, once a second, is none.
func keep(a *protocol.Answered, rec *progress.Record, obj Object) {
	raw := bytes.TrimSpace(a.Body)
	st, ends := state(obj.Status)
	if last, ok := rec.Snapshot().Detail.(originObject); !ok || !bytes.Equal(last, raw) {
		if ends {
			// The end wakes the watchers, who see this object with it.
			rec.SetFinalDetail(originObject(bytes.Clone(raw)), int64(len(raw)))
		} else {
			rec.SetDetail(originObject(bytes.Clone(raw)), int64(len(raw)))
		}
		if t, err := time.Parse(time.RFC3339Nano, obj.ExpiresAt); err == nil && !ends {
			rec.ExpiresAt(t)
		}
	}
	if ends {
		a.End(progress.SessionEnded(st, "the origin says "+obj.Status, a.Status))
	}
}

// partRefusal says why the origin refused a part, in its own words where
// its answer has them.
func partRefusal(n int, a *protocol.Answered) string {
	if a.Status == 0 {
		return fmt.Sprintf("part %d: %s", n, a.Outcome.Error)
	}
	msg := fmt.Sprintf("part %d: the origin answered %d %s", n, a.Status, http.StatusText(a.Status))
	if m := errorMessage(a.Body); m != "" {
		msg += ": " + m
	}
	return msg
}

// errorMessage reads the message of an origin's error answer, in either
// of the shapes APIs use: {"error":{"message":…}} or {"error":…, "message":…}.
func errorMessage(b []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if len(b) == 0 || len(b) > maxObject || json.Unmarshal(b, &v) != nil {
		return ""
	}
	var inner struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(v.Error, &inner) == nil && inner.Message != "" {
		return inner.Message
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil && s != "" {
		return s
	}
	return v.Message
}

// Refresh implements protocol.Refresher: the origin's status route, asked
// with the watcher's credential.
func (s *Sandbox) Refresh(ctx context.Context, r *http.Request, a *protocol.Answered) (string, error) {
	if s.AskedOrigin() == nil {
		return "", nil
	}
	status, body, refused, err := s.AskedOrigin().Ask(ctx, s.Prefix+a.Session.Key(),
		http.Header{"Authorization": {r.Header.Get("Authorization")}, "Accept": {"application/json"}}, maxObject+1)
	if refused != "" || err != nil {
		return refused, err
	}
	a.Status, a.Body = status, body
	obj, ok := ParseObject(body)
	if !ok {
		return "", fmt.Errorf("the origin's answer is no session object")
	}
	keep(a, a.Session, obj)
	return "", nil
}
