package dstor

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

// HeaderToken is the header that names an upload's token.
const HeaderToken = "X-Dstor-Upload-Token"

// TokenRequest is what the proxy reads of a get-token request's body.
type TokenRequest struct {
	ChunksNumber int
	FolderPath   string
}

// maxChunks bounds the chunks_number the proxy believes, maxFolder the
// bytes of folder_path it keeps.
const (
	maxChunks = 1_000_000
	maxFolder = 4096
)

// ParseTokenRequest reads chunks_number and folder_path from a get-token
// body of contentType (JSON, an urlencoded form or a multipart form), of
// which body is the start: protocol.MaxAnswer bytes or more may have been
// cut there, and a value that runs into the cut is not believed. false
// when it holds no valid chunks_number.
func ParseTokenRequest(contentType string, body []byte) (TokenRequest, bool) {
	mediaType, params, _ := mime.ParseMediaType(contentType)
	var chunks, folder string
	switch mediaType {
	case "application/x-www-form-urlencoded":
		form := string(body)
		if len(body) >= protocol.MaxAnswer {
			// The last pair may be cut short: "chunks_number=12" read as 1.
			form = form[:max(strings.LastIndexByte(form, '&'), 0)]
		}
		q, err := url.ParseQuery(form)
		if err != nil {
			return TokenRequest{}, false
		}
		chunks, folder = q.Get("chunks_number"), q.Get("folder_path")
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			// A part cut short ends in an error, not at its boundary.
			v, err := io.ReadAll(io.LimitReader(part, maxFolder+1))
			if err != nil {
				break
			}
			switch part.FormName() {
			case "chunks_number":
				chunks = string(v)
			case "folder_path":
				folder = string(v)
			}
		}
	default:
		// JSON, whatever the client said its type is.
		var v struct {
			ChunksNumber json.RawMessage `json:"chunks_number"`
			FolderPath   string          `json:"folder_path"`
		}
		if json.Unmarshal(body, &v) != nil {
			return TokenRequest{}, false
		}
		// A number, or a string of digits (escapes and all, as the
		// origin decodes it); null leaves "null", no number.
		chunks, folder = string(v.ChunksNumber), v.FolderPath
		_ = json.Unmarshal(v.ChunksNumber, &chunks)
	}
	n, err := strconv.Atoi(strings.TrimSpace(chunks))
	if err != nil || n < 1 || n > maxChunks {
		return TokenRequest{}, false
	}
	if len(folder) > maxFolder {
		folder = folder[:maxFolder]
	}
	return TokenRequest{ChunksNumber: n, FolderPath: folder}, true
}

// ParseTokenAnswer reads the token of a get-token answer
// ({"message":"ok","token":"…"}); false when it holds none.
func ParseTokenAnswer(body []byte) (string, bool) {
	var v struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(body, &v) != nil || progress.CheckKey(v.Token) != nil {
		return "", false
	}
	return v.Token, true
}

// Status is the proxy's own status object, in the origin's vocabulary.
type Status struct {
	Status           string `json:"status"`
	ErrorExplanation string `json:"errorExplanation,omitempty"`
	ErrorAtStage     string `json:"errorAtStage,omitempty"`
	ChunksNumber     *int   `json:"chunksNumber,omitempty"`
	ChunksUploaded   *int   `json:"chunksUploaded,omitempty"`
	ChunksInFlight   *int   `json:"chunksInFlight,omitempty"`
	BytesUploaded    *int64 `json:"bytesUploaded,omitempty"`
	FilesUploaded    *int   `json:"filesUploaded,omitempty"`
	CurrentFile      string `json:"currentFile,omitempty"`
	FolderPath       string `json:"folderPath,omitempty"`
}

// stageUploading is the stage the proxy's errors are at: the chunks'.
const stageUploading = "UPLOADING"

// notFound is the answer for an unknown token, or another credential's.
func notFound() Status {
	return Status{Status: "ERROR", ErrorExplanation: "upload not found", ErrorAtStage: stageUploading}
}

// upload is what the proxy keeps with a session: what the token request
// declared, and the origin's last status object once every chunk is in.
type upload struct {
	chunks int
	folder string
	origin []byte
}

func (u *upload) size() int64 { return int64(64 + len(u.folder) + len(u.origin)) }

// counts is the proxy's view of a session's chunks.
type counts struct {
	chunks, uploaded, inFlight, files int
	bytes                             int64
	current                           string
}

func countsOf(snap progress.Snapshot, u *upload) counts {
	c := counts{chunks: u.chunks, uploaded: snap.Session.Accepted, inFlight: len(snap.Session.InFlight), files: snap.Session.Files, bytes: snap.Received}
	for _, st := range snap.Session.InFlight {
		if st.Files == nil {
			continue
		}
		c.files += len(st.Files.Files)
		if st.Files.Current != nil {
			c.current = st.Files.Current.FullPath()
		}
	}
	return c
}

// StatusOf is the proxy's status object for a session whose chunks are
// still expected: UPLOADING, or ERROR while a rejected chunk has not been
// followed by an accepted one.
func StatusOf(snap progress.Snapshot) Status {
	u, ok := snap.Detail.(*upload)
	if !snap.Found || snap.Session == nil || !ok {
		return notFound()
	}
	c := countsOf(snap, u)
	st := Status{
		Status:         "UPLOADING",
		ChunksNumber:   &c.chunks,
		ChunksUploaded: &c.uploaded,
		ChunksInFlight: &c.inFlight,
		BytesUploaded:  &c.bytes,
		FilesUploaded:  &c.files,
		CurrentFile:    c.current,
		FolderPath:     u.folder,
	}
	switch {
	case snap.Session.Error != "":
		st.Status, st.ErrorExplanation, st.ErrorAtStage = "ERROR", snap.Session.Error, stageUploading
	case snap.State.Terminal() && snap.State != progress.Completed:
		// Ended without a word from the origin: its time ran out.
		why := snap.Error
		if why == "" {
			why = "upload " + snap.State.String()
		}
		st.Status, st.ErrorExplanation, st.ErrorAtStage = "ERROR", why, stageUploading
	}
	return st
}

// allIn reports whether every chunk the token request declared has been
// answered 2xx: from then on the origin knows the upload.
func allIn(snap progress.Snapshot) bool {
	u, ok := snap.Detail.(*upload)
	return ok && snap.Session != nil && snap.Session.Accepted >= u.chunks
}

// WithCounts adds the proxy's final count fields to the origin's status
// object obj, never changing a member the origin sent. It returns nil when
// obj is no JSON object.
func WithCounts(obj []byte, snap progress.Snapshot) []byte {
	u, ok := snap.Detail.(*upload)
	// JSON's whitespace only: an object after any other is no JSON.
	obj = bytes.Trim(obj, " \t\r\n")
	var members map[string]json.RawMessage
	if !ok || snap.Session == nil || len(obj) == 0 || obj[0] != '{' || json.Unmarshal(obj, &members) != nil {
		return nil
	}
	c := countsOf(snap, u)
	add := []struct {
		name  string
		value any
	}{
		{"chunksNumber", c.chunks}, {"chunksUploaded", c.uploaded}, {"bytesUploaded", c.bytes},
		{"filesUploaded", c.files}, {"folderPath", u.folder},
	}
	var out bytes.Buffer
	out.Write(obj[:len(obj)-1])
	sep := len(members) > 0
	for _, m := range add {
		if _, there := members[m.name]; there {
			continue
		}
		if sep {
			out.WriteByte(',')
		}
		sep = true
		v, _ := json.Marshal(m.value)
		out.WriteString(strconv.Quote(m.name))
		out.WriteByte(':')
		out.Write(v)
	}
	out.WriteByte('}')
	return out.Bytes()
}

// originState is the session state an origin status ends the session in.
// obj may be only the start of the origin's object (an answer too long to
// read whole): the status members before the cut decide.
func originState(obj []byte) (progress.State, string, bool) {
	v := originStatus(obj)
	switch v.Status {
	case "DONE":
		return progress.Completed, "", true
	case "ERROR":
		why := v.ErrorExplanation
		if why == "" {
			why = "the origin answered ERROR"
		}
		if v.ErrorAtStage != "" {
			why += " (at " + v.ErrorAtStage + ")"
		}
		return progress.Failed, why, true
	}
	return 0, "", false
}

// originStatus reads the status members of the origin's status object, of
// which obj may be the start only: a DONE object lists every file, and
// its status comes first. Members past the cut are unknown; a repeated
// member counts as json.Unmarshal takes it, the last.
func originStatus(obj []byte) Status {
	var st Status
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return Status{}
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		var dst *string
		switch t {
		case "status":
			dst = &st.Status
		case "errorExplanation":
			dst = &st.ErrorExplanation
		case "errorAtStage":
			dst = &st.ErrorAtStage
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		if dst != nil {
			*dst = ""
			_ = json.Unmarshal(raw, dst)
		}
	}
	return st
}

// rawJSON is a reply that is JSON already.
type rawJSON = json.RawMessage

// message reads the message of an origin's error answer
// ({"message":…}, {"errorExplanation":…} or {"error":…}).
func message(b []byte) string {
	var v struct {
		Message          string `json:"message"`
		ErrorExplanation string `json:"errorExplanation"`
		Error            any    `json:"error"`
	}
	if len(b) == 0 || len(b) > maxOrigin || json.Unmarshal(b, &v) != nil {
		return ""
	}
	switch {
	case v.ErrorExplanation != "":
		return v.ErrorExplanation
	case v.Message != "":
		return v.Message
	}
	if s, ok := v.Error.(string); ok {
		return s
	}
	return ""
}
