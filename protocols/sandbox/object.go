package sandbox

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Object is what the proxy reads of the origin's session object (the
// answers of create, part, complete and status requests).
type Object struct {
	UploadID      string `json:"upload_id"`
	ContentLength int64  `json:"content_length"`
	PartCount     int    `json:"part_count"`
	Status        string `json:"status"`
	UpdatedAt     string `json:"updated_at"`
	ExpiresAt     string `json:"expires_at"`
}

// maxObject bounds a session object the proxy keeps: the last one the
// origin sent is what watchers are shown, live view laid over.
const maxObject = 16 << 10

// ParseObject reads a session object; false when b is none (not a JSON
// object, too long, or without an upload_id).
func ParseObject(b []byte) (Object, bool) {
	var o Object
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > maxObject || b[0] != '{' {
		return o, false
	}
	if err := json.Unmarshal(b, &o); err != nil || o.UploadID == "" || o.ContentLength < 0 || o.PartCount < 0 {
		return Object{}, false
	}
	return o, true
}

// state is the session state an origin status word ends the session in,
// and whether it ends it.
func state(status string) (progress.State, bool) {
	switch status {
	case "completed":
		return progress.Completed, true
	case "aborted":
		return progress.Aborted, true
	case "expired":
		return progress.Expired, true
	case "failed":
		return progress.Failed, true
	}
	return progress.Uploading, false
}

// originObject is the last session object the origin sent, kept with the
// session record.
type originObject []byte

// PartInFlight is one part streaming through the proxy now.
type PartInFlight struct {
	PartNumber int   `json:"part_number"`
	Received   int64 `json:"received"`
	Size       int64 `json:"size"`
}

// Overlay lays the live view of snap over the origin's session object obj:
// status "uploading" where the origin still says created or staged while a
// part streams (or the end the proxy saw, where the origin's object is
// older than it), updated_at the later of the origin's and the last byte,
// and two fields added: received_bytes and parts_in_flight. Every other
// field stays as the origin sent it, in its place; so do status and
// updated_at where the live view has nothing to add. An object without
// them (the origin's was not kept) gets the proxy's own where it knows
// them. It returns nil when obj is no JSON object.
func Overlay(obj []byte, snap progress.Snapshot) []byte {
	fields, ok := topLevel(obj)
	if !ok || snap.Session == nil {
		return nil
	}
	inFlight := partsInFlight(snap.Session.InFlight)
	status := liveStatus(fields, obj, snap, len(inFlight) > 0)
	updated := lastUpdate(fields, obj, snap.Session.LastByte)

	// The members in the origin's order, each as it sent it but for
	// status and updated_at; then ours.
	var out bytes.Buffer
	out.Grow(len(obj) + 128 + 64*len(inFlight))
	out.WriteByte('{')
	for _, f := range fields {
		if f.name == "received_bytes" || f.name == "parts_in_flight" {
			continue // ours: the origin's (it has none) would be a second key
		}
		out.Write(obj[f.start:f.valueStart])
		switch {
		case f.name == "status" && status != "":
			out.Write(jsonString(status))
		case f.name == "updated_at" && updated != "":
			out.Write(jsonString(updated))
		default:
			out.Write(obj[f.valueStart:f.valueEnd])
		}
		out.WriteByte(',')
	}
	if !fields.has("status") && status != "" {
		out.WriteString(`"status":`)
		out.Write(jsonString(status))
		out.WriteByte(',')
	}
	if !fields.has("updated_at") && updated != "" {
		out.WriteString(`"updated_at":`)
		out.Write(jsonString(updated))
		out.WriteByte(',')
	}
	out.WriteString(`"received_bytes":`)
	out.WriteString(strconv.FormatInt(snap.Received, 10))
	out.WriteString(`,"parts_in_flight":`)
	b, _ := json.Marshal(inFlight)
	out.Write(b)
	out.WriteByte('}')
	return out.Bytes()
}

// liveStatus is the status the live view shows where it differs from the
// origin's, "" where the origin's stands (or, without one, where the proxy
// knows none either). A status that is no string counts as none of the
// origin's words, but is the origin's all the same.
func liveStatus(fields fields, obj []byte, snap progress.Snapshot, streaming bool) string {
	orig, _ := fields.str(obj, "status")
	has := fields.has("status")
	switch {
	case snap.State == progress.Aborted && orig != "aborted":
		return "aborted"
	case snap.State == progress.Expired && orig != "expired":
		return "expired"
	case !has && snap.State.Terminal():
		// The origin's object was let go when the session ended (past
		// max_file_details): the end the proxy saw.
		return snap.State.String()
	case streaming && (orig == "created" || orig == "staged" || !has):
		return "uploading"
	}
	return ""
}

// lastUpdate is the updated_at the live view shows where it differs from
// the origin's: the time of the last byte where it is later than the
// origin's, or where the origin gives none; "" where the origin's stands
// (later, or in a form the proxy cannot compare).
func lastUpdate(fields fields, obj []byte, lastByte time.Time) string {
	if lastByte.IsZero() {
		return ""
	}
	orig, isString := fields.str(obj, "updated_at")
	t, err := time.Parse(time.RFC3339Nano, orig)
	if err == nil && lastByte.After(t) || !fields.has("updated_at") || isString && orig == "" {
		return lastByte.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// partsInFlight lists the parts streaming now, by part number; a part sent
// twice at once shows its newest stream.
func partsInFlight(streams []progress.StreamState) []PartInFlight {
	parts := []PartInFlight{}
	for _, st := range streams {
		p := PartInFlight{PartNumber: st.Part, Received: st.Received, Size: st.Size}
		if i := slices.IndexFunc(parts, func(q PartInFlight) bool { return q.PartNumber == st.Part }); i >= 0 {
			parts[i] = p
			continue
		}
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b PartInFlight) int { return a.PartNumber - b.PartNumber })
	return parts
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// field is a top-level member of a JSON object: where it starts (its
// key), and where its value starts and ends.
type field struct {
	name                        string
	start, valueStart, valueEnd int
}

type fields []field

// has reports whether the object has a top-level member name.
func (fs fields) has(name string) bool {
	return slices.ContainsFunc(fs, func(f field) bool { return f.name == name })
}

// str returns the value of the top-level string member name.
func (fs fields) str(obj []byte, name string) (string, bool) {
	for _, f := range fs {
		if f.name == name {
			var s string
			if json.Unmarshal(obj[f.valueStart:f.valueEnd], &s) == nil {
				return s, true
			}
		}
	}
	return "", false
}

// topLevel finds the members of the JSON object obj, which must be valid
// JSON and nothing else.
func topLevel(obj []byte) (fields, bool) {
	if !json.Valid(obj) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var fs fields
	for dec.More() {
		start := int(dec.InputOffset())
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, ok := t.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		end := int(dec.InputOffset())
		fs = append(fs, field{name: name, start: skipBlankAndComma(obj, start), valueStart: end - len(v), valueEnd: end})
	}
	return fs, true
}

// skipBlankAndComma moves i past the blanks and the comma that separate a
// member from the one before it.
func skipBlankAndComma(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n' || b[i] == ',') {
		i++
	}
	return i
}
