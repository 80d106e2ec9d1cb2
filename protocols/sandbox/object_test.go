package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// seedObject is the session object of the seed's status route, every
// field filled as the reference origin fills them.
const seedObject = `{"upload_id":"up_9f8e","kind":"file","source_kind":"restartable_file","target_path":"/data/video.mp4",` +
	`"content_length":33554432,"accepted_bytes":8388608,"reserved_staging_bytes":33554432,"part_size":8388608,"part_count":4,` +
	`"max_concurrency":2,"status":"uploading","conflict":"replace","checksum_algorithm":"sha256",` +
	`"limits":{"max_upload_bytes":10737418240,"max_part_bytes":67108864,"max_concurrency":8,"sandbox_staging_quota_bytes":21474836480},` +
	`"created_at":"2026-03-01T10:00:00Z","updated_at":"2026-03-01T10:00:05Z","expires_at":"2026-03-02T10:00:00Z",` +
	`"user":"dev","next_part":2,"archive_format":"tar","whole_checksum_sha256":""}`

func TestParseObject(t *testing.T) {
	o, ok := ParseObject([]byte(seedObject))
	want := Object{UploadID: "up_9f8e", ContentLength: 33554432, PartCount: 4, Status: "uploading",
		UpdatedAt: "2026-03-01T10:00:05Z", ExpiresAt: "2026-03-02T10:00:00Z"}
	if !ok || o != want {
		t.Errorf("ParseObject(seed) = %+v, %v; want %+v", o, ok, want)
	}
	// Blanks around it, as an origin's answer may end with a newline.
	if o, ok := ParseObject([]byte("\n  " + seedObject + "\r\n")); !ok || o != want {
		t.Errorf("ParseObject(seed with blanks) = %+v, %v", o, ok)
	}
	// What the proxy does not read may be anything.
	if o, ok := ParseObject([]byte(`{"upload_id":"u","status":7,"extra":[1,{"a":null}]}`)); ok {
		t.Errorf("a status that is no string reads as %+v", o)
	}
	if o, ok := ParseObject([]byte(`{"upload_id":"u","extra":[1,{"a":null}],"content_length":0}`)); !ok || o != (Object{UploadID: "u"}) {
		t.Errorf("a minimal object reads as %+v, %v", o, ok)
	}

	long := `{"upload_id":"u","pad":"` + strings.Repeat("x", maxObject) + `"}`
	atBound := `{"upload_id":"u","pad":"` + strings.Repeat("x", maxObject-len(`{"upload_id":"u","pad":""}`)) + `"}`
	if _, ok := ParseObject([]byte(atBound)); !ok || len(atBound) != maxObject {
		t.Errorf("an object of %d bytes (the bound) is refused", len(atBound))
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"blanks", " \n"},
		{"null", "null"},
		{"an array", `[{"upload_id":"u"}]`},
		{"a string", `"{\"upload_id\":\"u\"}"`},
		{"an error answer", `{"error":{"code":"not_found","message":"upload session not found"}}`},
		{"cut short", `{"upload_id":"u","content_length":4`},
		{"two objects", `{"upload_id":"u"}{"upload_id":"v"}`},
		{"no upload_id", `{"content_length":4,"part_count":1,"status":"created"}`},
		{"empty upload_id", `{"upload_id":"","content_length":4}`},
		{"upload_id a number", `{"upload_id":12}`},
		{"negative content_length", `{"upload_id":"u","content_length":-1}`},
		{"negative part_count", `{"upload_id":"u","part_count":-1}`},
		{"content_length a string", `{"upload_id":"u","content_length":"4"}`},
		{"content_length a fraction", `{"upload_id":"u","content_length":4.5}`},
		{"content_length past int64", `{"upload_id":"u","content_length":18446744073709551615}`},
		{"too long", long},
	} {
		if o, ok := ParseObject([]byte(tc.in)); ok || o != (Object{}) {
			t.Errorf("%s: ParseObject = %+v, %v; want none", tc.name, o, ok)
		}
	}
}

// The origin's object in the overlay cases: parts of 10 bytes, part 1
// accepted. Its updated_at is t0.
const t0obj = `{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"%s","updated_at":"2026-03-01T10:00:00Z","next_part":2}`

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// live is a snapshot of a session that has received received bytes, is in
// state st, had its last byte at lastByte, and has streams in flight
// (oldest first).
func live(received int64, st progress.State, lastByte time.Time, inFlight ...progress.StreamState) progress.Snapshot {
	return progress.Snapshot{Found: true, Key: "/sandboxes/sb/uploads/u1", Total: 40, Received: received, State: st,
		Session: &progress.SessionState{InFlight: inFlight, LastByte: lastByte}}
}

func streamOf(n int, received, size int64) progress.StreamState {
	return progress.StreamState{Part: n, From: -1, Received: received, Size: size}
}

func TestOverlay(t *testing.T) {
	before, after := t0.Add(-time.Minute), t0.Add(1500*time.Millisecond)
	for _, tc := range []struct {
		name string
		obj  string
		snap progress.Snapshot
		want string
	}{
		{"created, nothing streams", fmt.Sprintf(t0obj, "created"), live(10, progress.Uploading, before),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"created","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"created, a part streams", fmt.Sprintf(t0obj, "created"), live(14, progress.Uploading, after, streamOf(2, 4, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:01.5Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`},
		{"staged, a part streams", fmt.Sprintf(t0obj, "staged"), live(14, progress.Uploading, after, streamOf(2, 4, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:01.5Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`},
		{"staged, nothing streams", fmt.Sprintf(t0obj, "staged"), live(10, progress.Uploading, before),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"staged","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"uploading, a part streams", fmt.Sprintf(t0obj, "uploading"), live(14, progress.Uploading, before, streamOf(2, 4, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`},
		// The origin is putting the parts together: a part sent now
		// (a client that resends) does not make it uploading again.
		{"completing, a part streams", fmt.Sprintf(t0obj, "completing"), live(14, progress.Uploading, before, streamOf(2, 4, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"completing","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`},
		{"failed, a part streams", fmt.Sprintf(t0obj, "failed"), live(14, progress.Failed, before, streamOf(2, 4, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"failed","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`},
		// The proxy saw the DELETE the origin answered 204: the object it
		// holds is from before.
		{"aborted by the proxy over an older object", fmt.Sprintf(t0obj, "uploading"), live(10, progress.Aborted, before),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"aborted","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"aborted, the origin says so too", fmt.Sprintf(t0obj, "aborted"), live(10, progress.Aborted, before),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"aborted","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"expired at the proxy over an older object", fmt.Sprintf(t0obj, "created"), live(10, progress.Expired, before),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"expired","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"completed", fmt.Sprintf(t0obj, "completed"), live(40, progress.Completed, after),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"completed","updated_at":"2026-03-01T10:00:01.5Z","next_part":2,"received_bytes":40,"parts_in_flight":[]}`},

		// updated_at: the later of the origin's and the last byte.
		{"the origin's updated_at is later", fmt.Sprintf(t0obj, "uploading"), live(14, progress.Uploading, t0.Add(-time.Nanosecond), streamOf(2, 4, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`},
		{"as late as the last byte", fmt.Sprintf(t0obj, "uploading"), live(10, progress.Uploading, t0),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"the last byte is later, in another zone", fmt.Sprintf(t0obj, "uploading"), live(10, progress.Uploading, t0.Add(time.Second).In(time.FixedZone("CET", 3600))),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:01Z","next_part":2,"received_bytes":10,"parts_in_flight":[]}`},
		{"the origin's in another zone", `{"upload_id":"u1","updated_at":"2026-03-01T12:00:02+02:00"}`, live(0, progress.Uploading, t0.Add(time.Second)),
			`{"upload_id":"u1","updated_at":"2026-03-01T12:00:02+02:00","received_bytes":0,"parts_in_flight":[]}`},
		{"the origin's cannot be read", `{"upload_id":"u1","updated_at":"yesterday"}`, live(0, progress.Uploading, after),
			`{"upload_id":"u1","updated_at":"yesterday","received_bytes":0,"parts_in_flight":[]}`},
		{"the origin's is a number", `{"upload_id":"u1","updated_at":1772359200}`, live(0, progress.Uploading, after),
			`{"upload_id":"u1","updated_at":1772359200,"received_bytes":0,"parts_in_flight":[]}`},
		{"the origin's is empty", `{"upload_id":"u1","updated_at":""}`, live(0, progress.Uploading, after),
			`{"upload_id":"u1","updated_at":"2026-03-01T10:00:01.5Z","received_bytes":0,"parts_in_flight":[]}`},
		{"the origin has none", `{"upload_id":"u1"}`, live(0, progress.Uploading, after),
			`{"upload_id":"u1","updated_at":"2026-03-01T10:00:01.5Z","received_bytes":0,"parts_in_flight":[]}`},
		{"no byte yet", `{"upload_id":"u1","updated_at":""}`, live(0, progress.Uploading, time.Time{}),
			`{"upload_id":"u1","updated_at":"","received_bytes":0,"parts_in_flight":[]}`},

		// Every other member as the origin sent it, in its order, blanks
		// and escapes included.
		{"members in the origin's order", "{\n  \"next_part\": 3,\n  \"limits\": {\"max_part_bytes\": 10, \"x\": [1, 2]},\n  \"st\\u0061tus\": \"created\",\n  \"upload_id\": \"u1\",\n  \"note\": \"caf\\u00e9 \\\"quoted\\\"\"\n}\n",
			live(13, progress.Uploading, time.Time{}, streamOf(3, 3, 10)),
			`{"next_part": 3,"limits": {"max_part_bytes": 10, "x": [1, 2]},"st\u0061tus": "uploading","upload_id": "u1","note": "caf\u00e9 \"quoted\"","received_bytes":13,"parts_in_flight":[{"part_number":3,"received":3,"size":10}]}`},
		{"the origin's own received_bytes and parts_in_flight", `{"received_bytes":999,"upload_id":"u1","parts_in_flight":"x","status":"created"}`,
			live(5, progress.Uploading, time.Time{}),
			`{"upload_id":"u1","status":"created","received_bytes":5,"parts_in_flight":[]}`},

		// An object without status: the proxy's where it knows one.
		{"no status, nothing streams", `{"upload_id":"u1"}`, live(10, progress.Uploading, before),
			`{"upload_id":"u1","updated_at":"2026-03-01T09:59:00Z","received_bytes":10,"parts_in_flight":[]}`},
		{"no status, a part streams", `{"upload_id":"u1"}`, live(12, progress.Uploading, time.Time{}, streamOf(2, 2, 10)),
			`{"upload_id":"u1","status":"uploading","received_bytes":12,"parts_in_flight":[{"part_number":2,"received":2,"size":10}]}`},
		{"no status, ended", `{}`, live(40, progress.Completed, time.Time{}),
			`{"status":"completed","received_bytes":40,"parts_in_flight":[]}`},
		{"a status that is no string", `{"upload_id":"u1","status":null}`, live(12, progress.Uploading, time.Time{}, streamOf(2, 2, 10)),
			`{"upload_id":"u1","status":null,"received_bytes":12,"parts_in_flight":[{"part_number":2,"received":2,"size":10}]}`},

		// parts_in_flight: by part number, a part sent twice at once
		// shown once (its newest stream), a part without a length -1.
		{"parts in flight sorted", fmt.Sprintf(t0obj, "uploading"),
			live(21, progress.Uploading, time.Time{}, streamOf(4, 3, 10), streamOf(2, 5, 10), streamOf(3, 1, 10), streamOf(1, 2, -1)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":21,"parts_in_flight":[{"part_number":1,"received":2,"size":-1},{"part_number":2,"received":5,"size":10},{"part_number":3,"received":1,"size":10},{"part_number":4,"received":3,"size":10}]}`},
		{"a part sent twice", fmt.Sprintf(t0obj, "uploading"),
			live(13, progress.Uploading, time.Time{}, streamOf(2, 9, 10), streamOf(3, 1, 10), streamOf(2, 2, 10)),
			`{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":13,"parts_in_flight":[{"part_number":2,"received":2,"size":10},{"part_number":3,"received":1,"size":10}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Overlay([]byte(tc.obj), tc.snap)
			if string(got) != tc.want {
				t.Errorf("Overlay\n got  %s\n want %s", got, tc.want)
			}
			checkObject(t, got)
		})
	}
}

func TestOverlayOfNoObject(t *testing.T) {
	snap := live(0, progress.Uploading, time.Time{})
	for _, obj := range []string{"", "null", "[]", `"x"`, `{"upload_id":"u1"`, `{"upload_id":"u1"} {}`, `{"a":1,}`} {
		if got := Overlay([]byte(obj), snap); got != nil {
			t.Errorf("Overlay(%q) = %s, want nil", obj, got)
		}
	}
	// A record that is no session has no live view to lay.
	if got := Overlay([]byte(`{"upload_id":"u1"}`), progress.Snapshot{Found: true}); got != nil {
		t.Errorf("Overlay of a record that is no session = %s, want nil", got)
	}
}

func TestReply(t *testing.T) {
	snap := live(14, progress.Uploading, time.Time{}, streamOf(2, 4, 10))
	snap.Detail = originObject(fmt.Sprintf(t0obj, "created"))
	want := `{"upload_id":"u1","content_length":40,"accepted_bytes":10,"part_count":4,"status":"uploading","updated_at":"2026-03-01T10:00:00Z","next_part":2,"received_bytes":14,"parts_in_flight":[{"part_number":2,"received":4,"size":10}]}`
	if b, _ := json.Marshal(Reply(snap)); string(b) != want {
		t.Errorf("Reply\n got  %s\n want %s", b, want)
	}
	// The origin's object let go (past max_file_details): the live view alone.
	ended := live(40, progress.Completed, time.Time{})
	if b, _ := json.Marshal(Reply(ended)); string(b) != `{"status":"completed","received_bytes":40,"parts_in_flight":[]}` {
		t.Errorf("Reply without the origin's object = %s", b)
	}
	for _, s := range []progress.Snapshot{{Key: "/sandboxes/sb/uploads/u1"}, {Found: true}} {
		if b, _ := json.Marshal(Reply(s)); string(b) != `{"error":{"code":"not_found","message":"upload session not found"}}` {
			t.Errorf("Reply of %+v = %s, want not_found", s, b)
		}
	}
}

// checkObject fails t unless b is one valid JSON object whose objects
// have no key twice, with received_bytes a number and parts_in_flight an
// array.
func checkObject(t testing.TB, b []byte) {
	t.Helper()
	if err := uniqueKeys(b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var v struct {
		Received *json.Number     `json:"received_bytes"`
		Parts    *json.RawMessage `json:"parts_in_flight"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || v.Received == nil || v.Parts == nil || (*v.Parts)[0] != '[' {
		t.Fatalf("%s: received_bytes and parts_in_flight missing or not a number and an array (%v)", b, err)
	}
}

// uniqueKeys checks that b is one valid JSON object in which no object
// has a key twice.
func uniqueKeys(b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("not an object")
	}
	return objectKeys(dec)
}

// objectKeys reads the rest of an object whose '{' dec has read, and the
// objects within it, refusing a key seen twice.
func objectKeys(dec *json.Decoder) error {
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k := t.(string)
		if seen[k] {
			return fmt.Errorf("key %q twice", k)
		}
		seen[k] = true
		if err := valueKeys(dec); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func valueKeys(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('{'):
		return objectKeys(dec)
	case json.Delim('['):
		for dec.More() {
			if err := valueKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	return err
}
