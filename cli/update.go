package cli

// Status is the word a watch reports for an upload, the same for every
// protocol; each protocol's own states map onto these.
type Status string

// The statuses of an upload as the CLI reports them.
const (
	// StatusWaiting: the server does not know the upload (yet).
	StatusWaiting Status = "waiting"
	// StatusUploading: the upload is open and its bytes may be moving.
	StatusUploading Status = "uploading"
	// StatusPaused: the upload is open, nothing is being sent (between
	// tus PATCHes, a sandbox session staged and not yet completed).
	StatusPaused Status = "paused"
	// StatusProcessing: every byte is in, the origin is finishing (a
	// sandbox session completing, dstor's stages after the last chunk).
	StatusProcessing Status = "processing"
	// StatusCompleted: the origin has the upload. Exit code 0.
	StatusCompleted Status = "completed"
	// StatusFailed: the upload ended without the origin having it
	// (failed, terminated, aborted, expired). Exit code 1.
	StatusFailed Status = "failed"
)

// final reports whether s is an end: completed or failed.
func (s Status) final() bool { return s == StatusCompleted || s == StatusFailed }

// Update is one reply of the server, normalised.
type Update struct {
	// Uploaded is the server's count of the upload's bytes; -1 when the
	// reply has none (nginx's done and error).
	Uploaded int64
	// Total is the upload's length; -1 when unknown (a chunked upload,
	// a tus deferred length, dstor, which knows no folder's size).
	Total  int64
	Status Status
	// Reason is why a failed upload failed, or the protocol's note on a
	// live one (a dstor chunk the origin refused).
	Reason string
}

// same reports whether u and v would show the same.
func (u Update) same(v Update) bool { return u == v }
