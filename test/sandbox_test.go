package test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// Four parts of 8 MiB sent two at a time, each pair held halfway: the
// overlaid status says uploading where the origin still says created,
// counts the bytes of the parts streaming, lists them, and keeps the
// origin's accepted_bytes; a watcher sees the same, then the completion
// the origin makes on its own (learned by asking it, as no request passes
// then), then a normal close. The origin stores the bytes sent.
func TestSandboxFourPartsTwoAtATime(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const part, parts = 8 << 20, 4
	src := pattern(parts * part)
	session, _ := e.create("sb_live", fileSession("/live.bin", parts*part, part))
	w := e.watch(session)
	if m := w.next(t); m.str("status") != "created" || m.num("received_bytes") != 0 || !m.inFlightIs() {
		t.Fatalf("watcher's first message: %v", m)
	}

	for pair := range 2 {
		a, b := 2*pair+1, 2*pair+2
		accepted := int64(2 * pair * part)
		held := map[int]*heldPart{a: e.startPart(session, a, part, nil), b: e.startPart(session, b, part, nil)}
		for n, p := range held {
			p.write(t, src[(n-1)*part:(n-1)*part+part/2])
		}
		want := accepted + part
		got := e.waitStatus(session, "counting both parts halfway", func(o sbObject) bool { return o.num("received_bytes") == want })
		at := e.originStatus(session)
		wantOrigin := map[int]string{0: "created", 1: "uploading"}[pair]
		halfway := []sbPart{{a, part / 2, part}, {b, part / 2, part}}
		if got.str("status") != "uploading" || at.str("status") != wantOrigin ||
			got.num("accepted_bytes") != accepted || at.num("accepted_bytes") != accepted || !got.inFlightIs(halfway...) {
			t.Fatalf("parts %d and %d halfway: got %v; the origin says %v", a, b, got, at)
		}
		if m := w.until(t, "showing both parts halfway", func(o sbObject) bool { return o.num("received_bytes") == want }); m.str("status") != "uploading" || !m.inFlightIs(halfway...) {
			t.Fatalf("watcher, parts %d and %d halfway: %v", a, b, m)
		}
		for n, p := range held {
			if r := p.finish(t, src[(n-1)*part+part/2:n*part]); r.code != http.StatusOK {
				t.Fatalf("part %d: %d %s", n, r.code, r.body)
			}
		}
	}

	got := e.status(session)
	if got.num("received_bytes") != parts*part || got.num("accepted_bytes") != parts*part || !got.inFlightIs() || got.str("status") != "staged" {
		t.Fatalf("every part in: %v", got)
	}
	sent := time.Now()
	if a := e.do("POST", session+"/complete?mode=async", nil, nil); a.code != http.StatusAccepted || a.object(t).str("status") != "completing" {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	w.until(t, "completing", func(o sbObject) bool { return o.str("status") == "completing" })
	last, code := w.end(t, 10*time.Second)
	if last.str("status") != "completed" || code != websocket.StatusNormalClosure {
		t.Fatalf("watcher ended with %v, close %v; want completed, 1000", last, code)
	}
	if asked := e.log.proxyAsked(session, sent, time.Now()); len(asked) == 0 {
		t.Fatal("the watcher learned of the completion, but the proxy never asked the origin")
	}
	if sum := sha256Hex(src); last.str("whole_checksum_sha256") != sum || e.storedSHA256("/live.bin") != sum {
		t.Fatalf("stored %s, whole_checksum_sha256 %s, sent %s", e.storedSHA256("/live.bin"), last.str("whole_checksum_sha256"), sum)
	}
	// Monotonic for a watcher: no part was refused.
	for i := 1; i < len(w.taken); i++ {
		if w.taken[i].num("received_bytes") < w.taken[i-1].num("received_bytes") {
			t.Fatalf("received_bytes went back: %v then %v", w.taken[i-1], w.taken[i])
		}
	}
}

// A part sent again counts once: its bytes add nothing until they pass
// what the origin accepted for it; of a part sent twice at once, the
// newest stream counts.
func TestSandboxPartSentTwice(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const part = 1 << 20
	src := pattern(3 * part)
	session, _ := e.create("sb_twice", fileSession("/twice.bin", 3*part, part))
	chunk := func(n int, from, to int64) []byte { return src[int64(n-1)*part+from : int64(n-1)*part+to] }

	if a := e.do("PUT", session+"/parts/1", chunk(1, 0, part), nil); a.code != http.StatusOK {
		t.Fatalf("part 1: %d %s", a.code, a.body)
	}
	again := e.startPart(session, 1, part, nil)
	again.write(t, chunk(1, 0, part/2))
	got := e.waitStatus(session, "showing part 1 again in flight", func(o sbObject) bool { return o.inFlightIs(sbPart{1, part / 2, part}) })
	if got.num("received_bytes") != part || got.num("accepted_bytes") != part || got.str("status") != "uploading" {
		t.Fatalf("part 1 sent again, halfway: %v", got)
	}

	older := e.startPart(session, 2, part, nil)
	older.write(t, chunk(2, 0, 3*part/4))
	e.waitStatus(session, "counting part 2's first stream", func(o sbObject) bool { return o.num("received_bytes") == part+3*part/4 })
	newer := e.startPart(session, 2, part, nil)
	newer.write(t, chunk(2, 0, part/4))
	got = e.waitStatus(session, "counting part 2's newest stream", func(o sbObject) bool { return o.inFlightIs(sbPart{1, part / 2, part}, sbPart{2, part / 4, part}) })
	if got.num("received_bytes") != part+part/4 {
		t.Fatalf("part 2 sent twice at once: %v, want received_bytes %d (part 1 once, part 2's newest stream)", got, part+part/4)
	}

	for _, s := range []struct {
		name  string
		p     *heldPart
		n     int
		from  int64
		wantR int64
	}{
		{"part 1 again", again, 1, part / 2, part + part/4},
		{"part 2's first stream", older, 2, 3 * part / 4, 2 * part},
		{"part 2's second stream", newer, 2, part / 4, 2 * part},
	} {
		if a := s.p.finish(t, chunk(s.n, s.from, part)); a.code != http.StatusOK {
			t.Fatalf("%s: %d %s", s.name, a.code, a.body)
		}
		if got := e.status(session); got.num("received_bytes") != s.wantR {
			t.Fatalf("after %s: %v, want received_bytes %d", s.name, got, s.wantR)
		}
	}
	if a := e.do("PUT", session+"/parts/3", chunk(3, 0, part), nil); a.code != http.StatusOK {
		t.Fatalf("part 3: %d %s", a.code, a.body)
	}
	got = e.status(session)
	if got.num("received_bytes") != 3*part || got.num("accepted_bytes") != 3*part || got.str("status") != "staged" || !got.inFlightIs() {
		t.Fatalf("every part in: %v", got)
	}
	if a := e.do("POST", session+"/complete?mode=sync", nil, nil); a.code != http.StatusOK {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	if got := e.storedSHA256("/twice.bin"); got != sha256Hex(src) {
		t.Fatalf("stored %s, sent %s", got, sha256Hex(src))
	}
}

// A part the origin refuses stops counting when it is refused: one over
// max_part_bytes (413, read up to the limit), one the origin fails after
// reading it all (X-Origin-Fail). The session goes on; the parts sent
// again make the upload whole.
func TestSandboxRefusedPartSentAgain(t *testing.T) {
	const part = 1 << 20
	e := newSandboxEnv(t, origin.Config{SandboxLimits: origin.SandboxLimits{MaxPartBytes: part}})
	src := pattern(2 * part)
	session, _ := e.create("sb_refused", fileSession("/refused.bin", 2*part, part))
	w := e.watch(session)

	// Chunked, so the origin reads it up to its limit before refusing it.
	tooLarge := e.startPart(session, 1, -1, nil)
	tooLarge.write(t, src[:part/2])
	got := e.waitStatus(session, "counting part 1 halfway", func(o sbObject) bool { return o.num("received_bytes") == part/2 })
	if !got.inFlightIs(sbPart{1, part / 2, -1}) || got.str("status") != "uploading" {
		t.Fatalf("part 1 (chunked) halfway: %v", got)
	}
	w.until(t, "counting part 1 halfway", func(o sbObject) bool { return o.num("received_bytes") == part/2 })
	over := append(bytes.Clone(src[part/2:part]), pattern(64<<10)...)
	a := tooLarge.finish(t, over)
	if a.code != http.StatusRequestEntityTooLarge || a.errorCode() != "part_too_large" {
		t.Fatalf("part 1 over max_part_bytes: %d %s", a.code, a.body)
	}
	e.passedAsIs("part 1 over max_part_bytes", a)
	got = e.status(session)
	if got.num("received_bytes") != 0 || !got.inFlightIs() || got.str("status") != "created" {
		t.Fatalf("after the refusal: %v, want received_bytes 0, no part in flight, the origin's created", got)
	}
	w.until(t, "counting nothing after the refusal", func(o sbObject) bool { return o.num("received_bytes") == 0 && o.inFlightIs() })

	if a := e.do("PUT", session+"/parts/1", src[:part], nil); a.code != http.StatusOK {
		t.Fatalf("part 1 again: %d %s", a.code, a.body)
	}
	// Held one byte short of its end: with its last byte, the origin
	// answers.
	failing := e.startPart(session, 2, part, http.Header{origin.FailHeader: {"503"}})
	failing.write(t, src[part:2*part-1])
	e.waitStatus(session, "counting part 2 but its last byte", func(o sbObject) bool { return o.num("received_bytes") == 2*part-1 })
	if a := failing.finish(t, src[2*part-1:]); a.code != http.StatusServiceUnavailable {
		t.Fatalf("part 2 failed by the origin: %d %s", a.code, a.body)
	}
	if got := e.status(session); got.num("received_bytes") != part || got.num("accepted_bytes") != part || got.str("status") != "uploading" || !got.inFlightIs() {
		t.Fatalf("after part 2 failed: %v, want received_bytes %d", got, part)
	}

	if a := e.do("PUT", session+"/parts/2", src[part:], nil); a.code != http.StatusOK {
		t.Fatalf("part 2 again: %d %s", a.code, a.body)
	}
	if a := e.do("POST", session+"/complete?mode=sync", nil, nil); a.code != http.StatusOK {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	last, code := w.end(t, 10*time.Second)
	if last.str("status") != "completed" || last.num("received_bytes") != 2*part || code != websocket.StatusNormalClosure {
		t.Fatalf("watcher ended with %v, close %v", last, code)
	}
	if got := e.storedSHA256("/refused.bin"); got != sha256Hex(src) {
		t.Fatalf("stored %s, sent %s", got, sha256Hex(src))
	}
}

// A session aborted while a part streams: DELETE's 204 passes, the status
// says aborted, the watcher ends with aborted and a normal close; the part
// the origin then refuses changes nothing.
func TestSandboxAbort(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const part = 1 << 20
	src := pattern(2 * part)
	session, _ := e.create("sb_abort", fileSession("/aborted.bin", 2*part, part))
	if a := e.do("PUT", session+"/parts/1", src[:part], nil); a.code != http.StatusOK {
		t.Fatalf("part 1: %d %s", a.code, a.body)
	}
	w := e.watch(session)
	p := e.startPart(session, 2, part, nil)
	p.write(t, src[part:part+part/2])
	w.until(t, "showing part 2 halfway", func(o sbObject) bool { return o.num("received_bytes") == part+part/2 })

	a := e.do("DELETE", session, nil, nil)
	if a.code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", a.code, a.body)
	}
	e.passedAsIs("DELETE", a)
	if got := e.status(session); got.str("status") != "aborted" || got["received_bytes"] == nil {
		t.Fatalf("status after the abort: %v", got)
	}
	last, code := w.end(t, 10*time.Second)
	if last.str("status") != "aborted" || code != websocket.StatusNormalClosure {
		t.Fatalf("watcher ended with %v, close %v; want aborted, 1000", last, code)
	}

	if a := p.finish(t, src[part+part/2:]); a.code != http.StatusConflict {
		t.Fatalf("part 2 of an aborted session: %d %s", a.code, a.body)
	}
	if got := e.status(session); got.str("status") != "aborted" || !got.inFlightIs() {
		t.Fatalf("status after the refused part: %v", got)
	}
	if _, err := os.Stat(filepath.Join(e.originDir, "aborted.bin")); !os.IsNotExist(err) {
		t.Fatalf("an aborted session left its file: %v", err)
	}
}

// A session the origin lets expire: its watcher learns it by asking the
// origin (no request passes) and ends with expired; the status says
// expired, as the origin does.
func TestSandboxExpired(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const part = 1 << 20
	session, created := e.create("sb_exp", fileSession("/expired.bin", 2*part, part))
	if a := e.do("PUT", session+"/parts/1", pattern(part), nil); a.code != http.StatusOK {
		t.Fatalf("part 1: %d %s", a.code, a.body)
	}
	w := e.watch(session)
	w.next(t)
	expired := time.Now()
	if !e.origin.ExpireSandboxUpload("sb_exp", created.object(t).str("upload_id")) {
		t.Fatal("the origin knows no such session")
	}
	last, code := w.end(t, 10*time.Second)
	if last.str("status") != "expired" || code != websocket.StatusNormalClosure {
		t.Fatalf("watcher ended with %v, close %v; want expired, 1000", last, code)
	}
	if asked := e.log.proxyAsked(session, expired, time.Now()); len(asked) == 0 {
		t.Fatal("the watcher learned of the expiry, but the proxy never asked the origin")
	}
	// The origin said it expired: its status answers are still overlaid.
	if got := e.status(session); got.str("status") != "expired" || e.originStatus(session).str("status") != "expired" || got["received_bytes"] == nil {
		t.Fatalf("status of the expired session: %v", got)
	}
	// One byte: the origin refuses a part of an expired session before it
	// reads any, and a whole part's body could meet the closed connection
	// before its client reads the refusal.
	a := e.do("PUT", session+"/parts/2", pattern(1), nil)
	if a.code != http.StatusGone {
		t.Fatalf("a part of the expired session: %d %s", a.code, a.body)
	}
	e.passedAsIs("a part of the expired session", a)
}

// A session is its token's: another token's status request gets the
// origin's own 404, as the origin answers it; a watcher with another token
// is refused with 404 before the upgrade, one without a token with 401.
func TestSandboxAnotherToken(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	session, _ := e.create("sb_tok", fileSession("/token.bin", 1<<20, 1<<20))
	if got := e.status(session); got["received_bytes"] == nil {
		t.Fatalf("the owner's status is not overlaid: %v", got)
	}

	for _, token := range []string{"other-key", ""} {
		viaProxy := e.do("GET", session, nil, bearer(token))
		direct := e.direct("GET", session, bearer(token))
		want := map[string]int{"other-key": http.StatusNotFound, "": http.StatusUnauthorized}[token]
		if viaProxy.code != want || viaProxy.code != direct.code || !bytes.Equal(viaProxy.body, direct.body) ||
			viaProxy.header.Get("Content-Type") != direct.header.Get("Content-Type") {
			t.Errorf("token %q: through the proxy %d %q, from the origin %d %q", token, viaProxy.code, viaProxy.body, direct.code, direct.body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		token string
		code  int
		error string
	}{
		{"other-key", http.StatusNotFound, "not_found"},
		{"", http.StatusUnauthorized, "unauthorized"},
	} {
		conn, resp, err := e.dialWatch(ctx, session, bearer(c.token))
		if err == nil {
			conn.CloseNow()
			t.Errorf("token %q: the watcher was let in", c.token)
			continue
		}
		if resp == nil || resp.StatusCode != c.code {
			t.Errorf("token %q: %v, want %d", c.token, err, c.code)
			continue
		}
		if code := refusal(t, resp); code != c.error {
			t.Errorf("token %q: error code %q, want %q", c.token, code, c.error)
		}
	}
}

// Every field of the seed is in the overlaid status answer with its JSON
// type, as the origin sent it but status and updated_at, in its order,
// followed by received_bytes and parts_in_flight. Only status answers are
// overlaid: the answers to creation, parts and completion, and errors,
// pass byte for byte.
func TestSandboxSeedFields(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	archive := tarOf(t, map[string][]byte{"dir/a.bin": pattern(900 << 10), "b.txt": []byte("hello")})
	const part = 1 << 19
	length := int64(len(archive))
	c := sbCreate{TargetPath: "/tree", ContentLength: length, PartSize: part, Kind: "directory_tar", Conflict: "merge", User: "alice"}
	session, a := e.create("sb_seed", c)
	e.passedAsIs("create", a)

	check := func(what string, got apiAnswer, optional ...string) sbObject {
		t.Helper()
		o := got.object(t)
		checkSeed(t, what, o, optional...)
		checkOverlaid(t, what, e.log.answerTo(t, got.id).body, got.body)
		return o
	}
	check("created", e.do("GET", session, nil, nil), "whole_checksum_sha256")

	p := e.startPart(session, 1, part, nil)
	p.write(t, archive[:part/4])
	e.waitStatus(session, "counting part 1", func(o sbObject) bool { return o.num("received_bytes") == part/4 })
	if o := check("part 1 streaming", e.do("GET", session, nil, nil), "whole_checksum_sha256"); o.str("status") != "uploading" {
		t.Fatalf("part 1 streaming: %v", o)
	}
	a = p.finish(t, archive[part/4:part])
	e.passedAsIs("part 1", a)
	for n := int64(2); (n-1)*part < length; n++ {
		a := e.do("PUT", fmt.Sprintf("%s/parts/%d", session, n), archive[(n-1)*part:min(n*part, length)], nil)
		e.passedAsIs(fmt.Sprintf("part %d", n), a)
	}
	a = e.do("POST", session+"/complete?mode=sync", nil, nil)
	if a.code != http.StatusOK {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	e.passedAsIs("complete", a)
	o := check("completed", e.do("GET", session, nil, nil))
	if o.str("status") != "completed" || o.num("received_bytes") != length || o.str("whole_checksum_sha256") != sha256Hex(archive) {
		t.Fatalf("completed: %v", o)
	}
	if b, err := os.ReadFile(filepath.Join(e.originDir, "tree", "b.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("the archive was not unpacked: %q %v", b, err)
	}
	a = e.do("DELETE", session, nil, nil)
	if a.code != http.StatusConflict {
		t.Fatalf("DELETE of a completed session: %d %s", a.code, a.body)
	}
	e.passedAsIs("DELETE of a completed session", a)
}

// Watchers of an idle session have the origin asked about it once a
// second at most, one request for all of them, and hear nothing while its
// answer does not change; while a part streams, the origin is not asked.
func TestSandboxOriginAskedOncePerSecond(t *testing.T) {
	e := newSandboxEnv(t, origin.Config{})
	const part = 1 << 20
	session, _ := e.create("sb_refresh", fileSession("/refresh.bin", part, part))
	var ws []*sbWatcher
	for range 3 {
		w := e.watch(session)
		w.next(t)
		ws = append(ws, w)
	}

	// How often the proxy asks is watched over a few seconds.
	from := time.Now()
	time.Sleep(3200 * time.Millisecond)
	asked := e.log.proxyAsked(session, from, time.Now())
	if len(asked) < 2 || len(asked) > 4 {
		t.Fatalf("3 watchers of an idle session for 3.2 s: the origin was asked %d times, want about once a second", len(asked))
	}
	for i := 1; i < len(asked); i++ {
		// A request per watcher would come within milliseconds of another.
		if gap := asked[i].Sub(asked[i-1]); gap < 500*time.Millisecond {
			t.Fatalf("the origin was asked twice within %v: %v", gap, asked)
		}
	}
	t.Logf("3 watchers of an idle session for 3.2 s: the origin was asked %d times, at %v after the start", len(asked), sinceAll(from, asked))
	// The origin said nothing new: the watchers hear nothing.
	for i, w := range ws {
		if n := len(w.msgs); n > 0 {
			t.Errorf("watcher %d of an idle session got %d messages, the origin's object unchanged", i, n)
		}
	}

	p := e.startPart(session, 1, part, nil)
	p.write(t, pattern(part)[:part/2])
	for _, w := range ws {
		w.until(t, "showing the part", func(o sbObject) bool { return o.num("received_bytes") == part/2 })
	}
	// A request claimed just before the part began may still be on its way.
	from = time.Now().Add(200 * time.Millisecond)
	time.Sleep(2500 * time.Millisecond)
	if asked := e.log.proxyAsked(session, from, time.Now()); len(asked) != 0 {
		t.Fatalf("the origin was asked while a part streamed: %v", asked)
	}
	if a := p.finish(t, pattern(part)[part/2:]); a.code != http.StatusOK {
		t.Fatalf("part 1: %d %s", a.code, a.body)
	}
	if a := e.do("POST", session+"/complete?mode=sync", nil, nil); a.code != http.StatusOK {
		t.Fatalf("complete: %d %s", a.code, a.body)
	}
	for _, w := range ws {
		if last, code := w.end(t, 10*time.Second); last.str("status") != "completed" || code != websocket.StatusNormalClosure {
			t.Fatalf("watcher ended with %v, close %v", last, code)
		}
	}
}

// seedFields are the members of the seed's session object (status of a
// resumable upload session) and their JSON types: "uint" an integer ≥ 0,
// "time" an RFC 3339 date-time, or the values an enum takes.
var seedFields = []struct {
	name string
	kind string
	enum []string
}{
	{"upload_id", "string", nil},
	{"kind", "enum", []string{"file", "directory_tar"}},
	{"source_kind", "enum", []string{"restartable_file", "spooled_stream", "directory_archive"}},
	{"target_path", "string", nil},
	{"content_length", "uint", nil},
	{"accepted_bytes", "uint", nil},
	{"reserved_staging_bytes", "uint", nil},
	{"part_size", "uint", nil},
	{"part_count", "uint", nil},
	{"max_concurrency", "uint", nil},
	{"status", "enum", []string{"created", "uploading", "staged", "completing", "completed", "aborted", "expired", "failed"}},
	{"conflict", "enum", []string{"merge", "replace", "error"}},
	{"checksum_algorithm", "enum", []string{"sha256"}},
	{"limits", "object", nil},
	{"created_at", "time", nil},
	{"updated_at", "time", nil},
	{"expires_at", "time", nil},
	{"user", "string", nil},
	{"next_part", "uint", nil},
	{"archive_format", "enum", []string{"tar"}},
	{"whole_checksum_sha256", "string", nil},
}

// seedLimits are the members of the seed's limits.
var seedLimits = []string{"max_upload_bytes", "max_part_bytes", "max_concurrency", "sandbox_staging_quota_bytes"}

// checkSeed fails the test unless o has every field of the seed but those
// optional, each of its JSON type, and the live view's: received_bytes a
// number, parts_in_flight an array of parts.
func checkSeed(t *testing.T, what string, o sbObject, optional ...string) {
	t.Helper()
	for _, f := range seedFields {
		v, ok := o[f.name]
		if !ok {
			if !slices.Contains(optional, f.name) {
				t.Errorf("%s: no %s in %v", what, f.name, o)
			}
			continue
		}
		if !hasType(v, f.kind, f.enum) {
			t.Errorf("%s: %s is %#v, want %s %v", what, f.name, v, f.kind, f.enum)
		}
	}
	limits, _ := o["limits"].(map[string]any)
	for _, name := range seedLimits {
		if !hasType(limits[name], "uint", nil) {
			t.Errorf("%s: limits.%s is %#v, want an integer", what, name, limits[name])
		}
	}
	if !hasType(o["received_bytes"], "uint", nil) {
		t.Errorf("%s: received_bytes is %#v, want an integer", what, o["received_bytes"])
	}
	if _, ok := o.inFlight(); !ok {
		t.Errorf("%s: parts_in_flight is %#v, want an array of parts", what, o["parts_in_flight"])
	}
}

// hasType reports whether the JSON value v (numbers as json.Number) is of
// kind.
func hasType(v any, kind string, enum []string) bool {
	switch kind {
	case "uint":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		return ok && err == nil && i >= 0
	case "time":
		s, ok := v.(string)
		_, err := time.Parse(time.RFC3339, s)
		return ok && err == nil
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "enum":
		s, ok := v.(string)
		return ok && slices.Contains(enum, s)
	}
	s, ok := v.(string)
	return ok && s != ""
}

// checkOverlaid fails the test unless overlaid is the origin's object with
// the live view laid over it: every member the origin sent, in its order
// and with its value but status and updated_at, then received_bytes and
// parts_in_flight.
func checkOverlaid(t *testing.T, what string, origin, overlaid []byte) {
	t.Helper()
	names := func(b []byte) []string {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.Token()
		var ns []string
		for dec.More() {
			k, _ := dec.Token()
			ns = append(ns, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		return ns
	}
	want := append(names(origin), "received_bytes", "parts_in_flight")
	if got := names(overlaid); !slices.Equal(got, want) {
		t.Errorf("%s: members %v, want %v", what, got, want)
	}
	o, err1 := decodeObject(origin)
	v, err2 := decodeObject(overlaid)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: not JSON: %v %v", what, err1, err2)
	}
	for k, ov := range o {
		if k == "status" || k == "updated_at" {
			continue
		}
		if a, b := fmt.Sprint(ov), fmt.Sprint(v[k]); a != b {
			t.Errorf("%s: %s is %s, the origin said %s", what, k, b, a)
		}
	}
}

// tarOf is a tar archive of files.
func tarOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sinceAll is how long after from each of at came.
func sinceAll(from time.Time, at []time.Time) []time.Duration {
	d := make([]time.Duration, len(at))
	for i, t := range at {
		d[i] = t.Sub(from).Round(time.Millisecond)
	}
	return d
}
