package sandbox

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// What the proxy parses of the origin's session JSON: ParseObject reads
// it, Overlay rewrites it. Neither may panic or let through what is not
// a session object, and Overlay's output must be one valid JSON object.

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		seedObject,
		"\n" + seedObject + "\n",
		`{"upload_id":"u"}`,
		`{"upload_id":"u","content_length":-1}`,
		`{"upload_id":"u","part_count":-0}`,
		`{"upload_id":"u","content_length":1e3}`,
		`{"UPLOAD_ID":"u","Status":"completed"}`,
		`{"upload_id":"u","upload_id":""}`,
		`{"upload_id":"\ud800"}`,
		`{"upload_id":"u","status":"created"`,
		`[{"upload_id":"u"}]`,
		`{"error":{"code":"not_found","message":"upload session not found"}}`,
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, ok := ParseObject(b)
		if !ok {
			if o != (Object{}) {
				t.Fatalf("refused %q but read %+v", b, o)
			}
			return
		}
		trimmed := bytes.TrimSpace(b)
		if o.UploadID == "" || o.ContentLength < 0 || o.PartCount < 0 || len(trimmed) > maxObject || trimmed[0] != '{' || !json.Valid(b) {
			t.Fatalf("%q read as the session object %+v", b, o)
		}
		// What ParseObject takes, Overlay can lay the live view over.
		if Overlay(b, live(0, progress.Uploading, time.Time{})) == nil {
			t.Fatalf("ParseObject takes %q, Overlay does not", b)
		}
	})
}

func FuzzOverlay(f *testing.F) {
	for _, s := range []string{
		seedObject,
		`{}`,
		` {"upload_id":"u1","status":"created","updated_at":"2026-03-01T10:00:00Z"} `,
		`{"status":"staged","received_bytes":1,"parts_in_flight":[{"part_number":1}]}`,
		`{"st\u0061tus":"created","updated_at":"2026-03-01T12:00:00+02:00"}`,
		`{"status":null,"updated_at":7}`,
		`{"status":"created","status":"created"}`,
		`{"a":{"status":"x","b":[1,{"c":"}"}]},"status":"completing"}`,
		"{\n\t\"status\" : \"created\" ,\n\t\"x\" : [ ]\n}",
		`[]`,
		`{"a":1,}`,
	} {
		f.Add([]byte(s), int64(15), uint8(progress.Uploading), int64(1772359201500000000), []byte{2, 5, 11, 3, 1, 0, 2, 9, 11})
	}
	f.Add([]byte(`{"status":"uploading"}`), int64(-1), uint8(progress.Aborted), int64(0), []byte(nil))
	f.Add([]byte(`{"updated_at":""}`), int64(0), uint8(progress.Expired), int64(-1), []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, obj []byte, received int64, state uint8, lastByte int64, parts []byte) {
		snap := live(received, progress.State(state%6), time.Time{})
		if lastByte != 0 {
			snap.Session.LastByte = time.Unix(0, lastByte)
		}
		for i := 0; i+2 < len(parts); i += 3 {
			snap.Session.InFlight = append(snap.Session.InFlight, streamOf(int(parts[i]), int64(parts[i+1]), int64(parts[i+2])-1))
		}
		out := Overlay(obj, snap)
		trimmed := bytes.TrimSpace(obj)
		isObject := json.Valid(obj) && len(trimmed) > 0 && trimmed[0] == '{'
		if out == nil {
			if isObject {
				t.Fatalf("Overlay refused the object %q", obj)
			}
			return
		}
		if !isObject {
			t.Fatalf("Overlay laid the live view over %q, no object: %s", obj, out)
		}
		if !json.Valid(out) {
			t.Fatalf("Overlay(%q) = %q, no valid JSON", obj, out)
		}
		var view struct {
			Received int64          `json:"received_bytes"`
			Parts    []PartInFlight `json:"parts_in_flight"`
		}
		if err := json.Unmarshal(out, &view); err != nil || view.Received != received || view.Parts == nil {
			t.Fatalf("Overlay(%q) = %s: received_bytes %d, parts_in_flight %v (%v)", obj, out, view.Received, view.Parts, err)
		}
		if len(view.Parts) > len(snap.Session.InFlight) || !slices.IsSortedFunc(view.Parts, func(a, b PartInFlight) int { return a.PartNumber - b.PartNumber }) ||
			len(slices.CompactFunc(slices.Clone(view.Parts), func(a, b PartInFlight) bool { return a.PartNumber == b.PartNumber })) != len(view.Parts) {
			t.Fatalf("parts_in_flight %v of streams %v: not by part number, each once", view.Parts, snap.Session.InFlight)
		}
		if uniqueKeys(obj) != nil {
			return // the origin's own duplicates stay its own
		}
		if err := uniqueKeys(out); err != nil {
			t.Fatalf("Overlay(%q) = %s: %v", obj, out, err)
		}
		// Every member but ours, status and updated_at as the origin sent it.
		var in, got map[string]json.RawMessage
		if json.Unmarshal(obj, &in) != nil || json.Unmarshal(out, &got) != nil {
			t.Fatalf("Overlay(%q) = %s: members unreadable", obj, out)
		}
		for k, v := range in {
			switch k {
			case "received_bytes", "parts_in_flight", "status", "updated_at":
				continue
			}
			if !bytes.Equal(v, got[k]) {
				t.Fatalf("member %q was %s, is %s", k, v, got[k])
			}
		}
		var origStatus, status string
		json.Unmarshal(in["status"], &origStatus)
		if json.Unmarshal(got["status"], &status); status != origStatus && !slices.Contains([]string{"uploading", "aborted", "expired", snap.State.String()}, status) {
			t.Fatalf("status %q over the origin's %q", status, origStatus)
		}
	})
}
