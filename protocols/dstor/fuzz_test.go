package dstor

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// FuzzParseTokenRequest: whatever a client sends to get-token, the proxy
// believes a count within its bounds and a bounded folder, and reads a
// request written the way clients write it as it was written.
func FuzzParseTokenRequest(f *testing.F) {
	form, formType := formBody("chunks_number", "12", "folder_path", "/photos")
	for _, seed := range [][2]string{
		{"application/json", `{"chunks_number": 100, "folder_path": "/photos"}`},
		{"application/json", `{"chunks_number": "3", "folder_path": "/a//b/"}`},
		{"", `{"chunks_number":"\u0031\u0032","folder_path":"/p"}`},
		{"application/json; charset=utf-8", `{"chunks_number":1e3}`},
		{"application/json", `{"chunks_number":null}`},
		{"application/json", `{"chunks_number":"-0"}`},
		{"application/x-www-form-urlencoded", "chunks_number=5&folder_path=%2Fmy+folder"},
		{"application/x-www-form-urlencoded", "chunks_number=%2B5;folder_path=x"},
		{"application/x-www-form-urlencoded", "chunks_number= 5 &chunks_number=6"},
		{formType, string(form)},
		{"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"chunks_number\"\r\n\r\n7\r\n--b--\r\n"},
		{"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"chunks_number\"\r\n\r\n7"},
		{"multipart/form-data", "--\r\n\r\n"},
		{"text/plain; charset=\"", `{"chunks_number":2}`},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		tr, ok := ParseTokenRequest(contentType, []byte(body))
		if !ok {
			if tr != (TokenRequest{}) {
				t.Fatalf("refused, yet %+v", tr)
			}
			return
		}
		if tr.ChunksNumber < 1 || tr.ChunksNumber > maxChunks {
			t.Fatalf("%d chunks believed", tr.ChunksNumber)
		}
		if len(tr.FolderPath) > maxFolder {
			t.Fatalf("a %d-byte folder kept", len(tr.FolderPath))
		}
		// Written again as a client writes it, as JSON and as a form, it
		// reads the same (JSON carries only valid UTF-8).
		if utf8.ValidString(tr.FolderPath) {
			js, _ := json.Marshal(map[string]any{"chunks_number": tr.ChunksNumber, "folder_path": tr.FolderPath})
			if again, ok := ParseTokenRequest("application/json", js); !ok || again != tr {
				t.Fatalf("%q reads %+v; as JSON %s, %+v %v", body, tr, js, again, ok)
			}
		}
		enc := url.Values{"chunks_number": {strconv.Itoa(tr.ChunksNumber)}, "folder_path": {tr.FolderPath}}.Encode()
		if len(enc) < protocol.MaxAnswer {
			if again, ok := ParseTokenRequest("application/x-www-form-urlencoded", []byte(enc)); !ok || again != tr {
				t.Fatalf("%q reads %+v; as a form %s, %+v %v", body, tr, enc, again, ok)
			}
		}
	})
}

// FuzzParseTokenAnswer: a token the proxy takes from an answer is a key
// it can hold, and the one the answer's token member says.
func FuzzParseTokenAnswer(f *testing.F) {
	for _, s := range []string{
		`{"message":"ok","token":"f3a9c2e1"}`,
		`{"token":"a\u0000b"}`,
		`{"token":"\ud800"}`,
		`{"token":"x","token":"y"}`,
		`{"Token":"x"}`,
		`{"token":"x"} trailing`,
		`{"message":"chunks_number is required"}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, ok := ParseTokenAnswer(body)
		if !ok {
			if tok != "" {
				t.Fatalf("no token, yet %q", tok)
			}
			return
		}
		if err := progress.CheckKey(tok); err != nil {
			t.Fatalf("token %q taken: it %v", tok, err)
		}
		var v struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Token != tok {
			t.Fatalf("%q gives %q; its token member is %q (%v)", body, tok, v.Token, err)
		}
		again, _ := json.Marshal(map[string]string{"message": "ok", "token": tok})
		if got, ok := ParseTokenAnswer(again); !ok || got != tok {
			t.Fatalf("token %q, written again, reads %q %v", tok, got, ok)
		}
	})
}

// FuzzWithCounts: the proxy adds its counts to any JSON object of the
// origin's, leaving every byte the origin sent as it was, and touches
// nothing else.
func FuzzWithCounts(f *testing.F) {
	for _, s := range []string{
		`{"status":"ADDING_TO_IPFS"}`,
		`{"status":"DONE","data":{"folderPath":"/photos","files":[{"path":"a","size":1,"cid":"b"}]}}`,
		`{"chunksNumber":5,"status":"SAVING_DATA","folderPath":"/x"}`,
		`{"chunks\u004eumber":9}`,
		"{ \n}",
		`{}`,
		"\u00a0{}",
		`{"a":1,"a":2}`,
		`{"\xff":1,"\xfe":2}`,
		`[]`,
		`{"status":"DONE"`,
		`"DONE"`,
	} {
		f.Add([]byte(s), 3, 2, 5, int64(1234), "/photos")
	}
	f.Fuzz(func(t *testing.T, obj []byte, chunks, accepted, files int, received int64, folder string) {
		snap := session(chunks, folder, received, progress.SessionState{Accepted: accepted, Files: files})
		var members map[string]json.RawMessage
		isObject := json.Unmarshal(obj, &members) == nil && members != nil
		got := WithCounts(obj, snap)
		if got == nil {
			if isObject {
				t.Fatalf("%q is an object, yet no counts were added", obj)
			}
			return
		}
		if !isObject {
			t.Fatalf("%q is no object, yet WithCounts gave %q", obj, got)
		}
		// The origin's object, all but its closing brace, comes first,
		// byte for byte.
		trimmed := bytes.Trim(obj, " \t\r\n")
		if !bytes.HasPrefix(got, trimmed[:len(trimmed)-1]) {
			t.Fatalf("WithCounts(%q) = %q changes the origin's bytes", obj, got)
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(got, &out); err != nil {
			t.Fatalf("WithCounts(%q) = %q, no JSON object: %v", obj, got, err)
		}
		for k, v := range members {
			if !bytes.Equal(out[k], v) {
				t.Fatalf("member %q of %q: %s became %s", k, obj, v, out[k])
			}
		}
		// What the proxy added: its counts, where the origin said nothing.
		for name, want := range map[string]any{
			"chunksNumber": chunks, "chunksUploaded": accepted, "bytesUploaded": received,
			"filesUploaded": files, "folderPath": folder,
		} {
			if _, there := members[name]; there {
				continue
			}
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(out[name], wantJSON) {
				t.Fatalf("%s added as %s, want %s", name, out[name], wantJSON)
			}
		}
		for k := range out {
			if _, there := members[k]; !there && !addedByProxy(k) {
				t.Fatalf("WithCounts(%q) added %q", obj, k)
			}
		}
	})
}

// addedByProxy reports whether name is one of the members WithCounts adds.
func addedByProxy(name string) bool {
	switch name {
	case "chunksNumber", "chunksUploaded", "bytesUploaded", "filesUploaded", "folderPath":
		return true
	}
	return false
}
