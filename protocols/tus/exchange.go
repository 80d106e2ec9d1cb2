package tus

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// creation reads a creation POST. Its upload is known once the answer
// names it (Location), with the length, metadata and concatenation the
// request declared; the bytes of a creation-with-upload show then, as the
// answer's offset.
func creation(r *http.Request, idle time.Duration) *protocol.Exchange {
	length := int64(-1)
	if n, ok := ByteCount(r.Header, hdrUploadLength); ok {
		length = n
	}
	md := ParseMetadata(r.Header.Get(hdrUploadMetadata))
	concat := ParseConcat(r.Header.Get(hdrUploadConcat), r.URL)
	base := r.URL
	return &protocol.Exchange{Answer: func(a *protocol.Answered) {
		if a.Status != http.StatusCreated {
			return
		}
		key, ok := UploadPath(a.Header.Get("Location"), base)
		if !ok {
			return
		}
		total := length
		if concat.Final {
			total = finalLength(a, concat.Partials)
		}
		rec := a.Open(key, progress.SessionSpec{Total: total, Idle: idle})
		if rec == nil {
			return
		}
		if md != nil {
			rec.SetDetail(md, md.size())
		}
		learn(a, rec)
		if concat.Final {
			// The server has made the final upload of its partials.
			if total >= 0 {
				rec.Acknowledge(total)
			}
			a.End(progress.SessionEnded(progress.Completed, "", a.Status))
			return
		}
		if total == 0 {
			// An empty upload is whole once created: tusd finishes it then
			// and answers without an Upload-Offset, and a client sends
			// nothing more.
			a.End(progress.SessionEnded(progress.Completed, "", a.Status))
			return
		}
		completeIfWhole(a, rec)
	}}
}

// finalLength is the length of a final upload: the sum of its partials'
// lengths, -1 when the proxy does not know them all.
func finalLength(a *protocol.Answered, partials []string) int64 {
	if n, ok := ByteCount(a.Header, hdrUploadLength); ok {
		return n
	}
	if len(partials) == 0 {
		return -1
	}
	var sum int64
	for _, p := range partials {
		rec := a.Find(p)
		if rec == nil || rec.Total() < 0 {
			return -1
		}
		sum += rec.Total()
	}
	return sum
}

// patch reads a PATCH: its body streams from its Upload-Offset, and the
// answer's Upload-Offset is what the server acknowledged.
func patch(r *http.Request, idle time.Duration) *protocol.Exchange {
	from, ok := ByteCount(r.Header, hdrUploadOffset)
	length, hasLength := ByteCount(r.Header, hdrUploadLength)
	spec := progress.SessionSpec{Total: -1, Idle: idle}
	if hasLength {
		spec.Total = length
	}
	return &protocol.Exchange{
		// A PATCH streams into the session the proxy knows; of an upload
		// it does not know, only the server's 204 opens one, so that
		// PATCHes to made-up URLs cannot fill the zone with sessions.
		Key: r.URL.Path,
		// A PATCH that does not say where it starts is refused by the
		// server; its bytes are no progress.
		Stream: ok,
		From:   from,
		Answer: func(a *protocol.Answered) {
			rec := a.Session
			if rec == nil {
				if a.Status != http.StatusNoContent {
					return
				}
				if rec = a.Open(r.URL.Path, spec); rec == nil {
					return
				}
			}
			switch {
			case a.Status == http.StatusNoContent || a.Status == http.StatusOK:
				if hasLength {
					rec.SetTotal(length)
				}
				learn(a, rec)
				rec.SetError("")
				completeIfWhole(a, rec)
			case gone(a.Status):
				a.End(progress.SessionEnded(progress.Failed, goneError(a.Status), a.Status))
			case a.Status == 0:
				rec.SetError(a.Outcome.Error)
			default:
				rec.SetError(refusal(a.Status, from))
			}
		},
	}
}

// head reads a HEAD: a 200 answer says where the server stands, which is
// how a client resumes, and how the proxy learns of an upload it has not
// seen created.
func head(r *http.Request, idle time.Duration) *protocol.Exchange {
	return &protocol.Exchange{
		Key: r.URL.Path,
		Answer: func(a *protocol.Answered) {
			switch {
			case a.Status == http.StatusOK:
				total := int64(-1)
				if n, ok := ByteCount(a.Header, hdrUploadLength); ok {
					total = n
				}
				rec := a.Session
				if rec == nil {
					if rec = a.Open(r.URL.Path, progress.SessionSpec{Total: total, Idle: idle}); rec == nil {
						return
					}
				} else if total >= 0 {
					rec.SetTotal(total)
				}
				learn(a, rec)
				completeIfWhole(a, rec)
			case gone(a.Status) && a.Session != nil:
				a.End(progress.SessionEnded(progress.Failed, goneError(a.Status), a.Status))
			}
		},
	}
}

// termination reads a DELETE: answered 204, the upload is terminated.
func termination(r *http.Request) *protocol.Exchange {
	return &protocol.Exchange{
		Key: r.URL.Path,
		Answer: func(a *protocol.Answered) {
			if a.Status == http.StatusNoContent {
				a.End(progress.SessionEnded(progress.Aborted, "terminated by the client", a.Status))
			}
		},
	}
}

// learn takes what a success answer says of the upload: the offset the
// server holds and when it will expire.
func learn(a *protocol.Answered, rec *progress.Record) {
	if n, ok := ByteCount(a.Header, hdrUploadOffset); ok {
		rec.Acknowledge(n)
	}
	if t := Expires(a.Header); !t.IsZero() {
		rec.ExpiresAt(t)
	}
}

// completeIfWhole completes an upload whose server holds its whole length.
func completeIfWhole(a *protocol.Answered, rec *progress.Record) {
	off, ok := ByteCount(a.Header, hdrUploadOffset)
	if total := rec.Total(); ok && total >= 0 && off >= total {
		// An error of an earlier request is history once the upload is whole.
		rec.SetError("")
		a.End(progress.SessionEnded(progress.Completed, "", a.Status))
	}
}

// gone reports an answer that says the upload no longer exists.
func gone(status int) bool { return status == http.StatusNotFound || status == http.StatusGone }

func goneError(status int) string {
	return fmt.Sprintf("the tus server answered %d %s: the upload is gone", status, http.StatusText(status))
}

// refusal says why the server refused a PATCH; the upload goes on.
func refusal(status int, from int64) string {
	switch status {
	case http.StatusConflict:
		return fmt.Sprintf("the tus server answered 409 Conflict: the PATCH at offset %d is not where the upload stands", from)
	case statusChecksumMismatch:
		return "the tus server answered 460 Checksum Mismatch: the PATCH's bytes were discarded"
	}
	if text := http.StatusText(status); text != "" {
		return fmt.Sprintf("the tus server answered %d %s to a PATCH", status, text)
	}
	return fmt.Sprintf("the tus server answered %d to a PATCH", status)
}

// statusChecksumMismatch is tus's answer to a PATCH whose checksum does
// not match its bytes (the checksum extension).
const statusChecksumMismatch = 460
