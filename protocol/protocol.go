// Package protocol is what a progress API implements to be served by the
// upload_progress handler: a Caddy guest module in the namespace
// http.handlers.upload_progress.protocols, loaded from the handler's
// "protocols" list by its "name".
//
// A protocol decides which requests are its uploads, their key and owner
// by default, where its status endpoints are, how its status requests read
// and how its replies look. What only some protocols do (reading the
// origin's answer, POSTed status forms, JSONP, asking the origin about
// unknown keys) they declare by implementing the optional interfaces below,
// which the handler finds by type assertion, as Caddy finds a Provisioner.
package protocol

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// Namespace is the Caddy module namespace of protocols.
const Namespace = "http.handlers.upload_progress.protocols"

// Protocol is a progress API. Its module embeds Config, which holds the
// options every protocol has.
type Protocol interface {
	caddy.Module
	// Common returns the options every protocol has, with the protocol's
	// defaults applied by its Provision. Config implements it.
	Common() *Config
	// Tracks reports whether r is an upload to track.
	Tracks(r *http.Request) bool
	// Key returns the key an upload is tracked under by the protocol's own
	// rule, "" if it names none. A key template in the configuration
	// replaces the rule.
	Key(r *http.Request) string
	// ParseStatus reads a status request (REST or WebSocket): which key it
	// asks about, and how many bytes a watcher wants between updates.
	ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure)
	// Render turns what a key shows into the protocol's reply.
	Render(progress.Snapshot) any
	// Fail renders a status request that cannot be answered with a state:
	// the HTTP status and the reply.
	Fail(*progress.Failure) (int, any)
}

// Owned is a protocol whose records are bound to a credential by default.
// A protocol that is not Owned is ownerless unless an owner template is
// configured.
type Owned interface {
	// Credential returns the credential a request carries, "" if none.
	Credential(r *http.Request) string
	// CredentialName names the credential in error messages.
	CredentialName() string
}

// Claimer is a protocol that shares status paths with others and tells its
// status requests apart by their parameters.
type Claimer interface {
	// Claims reports whether a status request at a shared path is this
	// protocol's.
	Claims(r *http.Request) bool
}

// FileReporter is a protocol whose replies describe an upload's files: the
// files of its multipart bodies are followed (other protocols' are not, as
// nobody would read the result), and a raw upload may name its one file.
type FileReporter interface {
	// FileName names the one file of a raw upload, "" if it names none.
	FileName(r *http.Request) string
}

// AnswerReader is a protocol that reads the origin's answer to an upload:
// the record then ends once the answer has been passed on, as the answer
// says.
type AnswerReader interface {
	// ReadAnswer reads the start of the origin's answer (at most
	// MaxAnswer bytes) to a request the origin answered with a success
	// status.
	ReadAnswer(answer []byte) Answer
}

// Answer is what a protocol read from the origin's answer to an upload.
type Answer struct {
	// Detail is kept with the record (progress.Record.SetDetail), and Size
	// is the memory it holds; nil keeps nothing.
	Detail any
	Size   int64
	// Refused, if set, says why the origin refused the upload although
	// its status said success (pCloud answers every request with 200 and
	// a result code): the upload then ends failed, with this error.
	Refused string
}

// MaxAnswer bounds how much of the origin's answer an AnswerReader sees.
const MaxAnswer = 64 << 10

// FormStatus is a protocol whose status requests may be POSTed forms.
type FormStatus interface {
	// PrepareStatus readies a status request before its credential and
	// query are read (it reads a POSTed form, bounded).
	PrepareStatus(r *http.Request) *progress.Failure
}

// Encoder is a protocol whose replies are not plain JSON (JSONP).
type Encoder interface {
	// Encode renders v for r: the body and its content type.
	Encode(r *http.Request, v any) ([]byte, string, error)
}

// HeaderSetter is a protocol that adds headers of its own to its replies.
type HeaderSetter interface {
	SetHeaders(http.Header)
}

// Prober is a protocol that can ask the origin about keys the tracker does
// not know. It is never asked about a key with a live record.
type Prober interface {
	// Probe returns what the origin says of key for owner, asked with the
	// status request r; false when no probe is configured.
	Probe(r *http.Request, owner progress.Owner, key string) (progress.Snapshot, bool)
}
