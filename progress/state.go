package progress

// State is where an upload is in its life.
type State uint8

const (
	// NotExist means no record is known for the key (never started, expired,
	// or owned by someone else).
	NotExist State = iota
	// Uploading means the body is still streaming through the proxy.
	Uploading
	// Completed means the origin answered the upload with a success status.
	Completed
	// Failed means the upload did not reach the origin whole, or the origin refused it.
	Failed
	// Aborted means the client ended a session before it was complete (a
	// tus termination, an aborted multi-part session).
	Aborted
	// Expired means a session ended unfinished because its time ran out:
	// its origin's expiry passed, or it had no request for its idle time.
	Expired
)

// String names the state, for logs and WebSocket close reasons. Protocols
// render states in their own words.
func (s State) String() string {
	switch s {
	case Uploading:
		return "uploading"
	case Completed:
		return "completed"
	case Failed:
		return "failed"
	case Aborted:
		return "aborted"
	case Expired:
		return "expired"
	default:
		return "not_exist"
	}
}

// Terminal reports whether the state can no longer change for this record.
func (s State) Terminal() bool { return s >= Completed }
