// Package pcloud serves pCloud's uploadprogress: uploads to the upload
// route (pCloud's uploadfile) carry a progresshash query parameter, and
// `GET` or `POST /uploadprogress?progresshash=…` answers pCloud's
// uploadprogress reply. pCloud answers every request with HTTP 200 and a
// result code; so does this, but for methods and overload.
package pcloud

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Pcloud{})
}

// Pcloud is pCloud's uploadprogress. An upload to the upload route that
// names a progresshash is tracked under it, owned by its auth or
// access_token parameter or Authorization bearer token; the files of a
// multipart body are followed, and once the origin answers, its metadata
// of the stored files is what the reply lists. Status endpoints:
// `/uploadprogress` (REST, GET or a POSTed form) and `/uploadprogress/ws`
// (WebSocket).
type Pcloud struct {
	protocol.Config

	// The path of the upload route whose uploads are tracked.
	// Default: `/uploadfile`.
	UploadPath string `json:"upload_path,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Pcloud) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.Namespace + ".pcloud",
		New: func() caddy.Module { return new(Pcloud) },
	}
}

// Provision sets the defaults and checks the upload route.
func (p *Pcloud) Provision(caddy.Context) error {
	p.SetDefaults("/uploadprogress", "/uploadprogress/ws")
	if p.UploadPath == "" {
		p.UploadPath = "/uploadfile"
	}
	if !strings.HasPrefix(p.UploadPath, "/") {
		return fmt.Errorf("upload_path %q must start with /", p.UploadPath)
	}
	return nil
}

// Tracks implements protocol.Protocol.
func (p *Pcloud) Tracks(r *http.Request) bool { return tracks(r, p.UploadPath) }

// Key implements protocol.Protocol.
func (*Pcloud) Key(r *http.Request) string { return key(r) }

// Credential implements protocol.Owned.
func (*Pcloud) Credential(r *http.Request) string { return credential(r) }

// CredentialName implements protocol.Owned.
func (*Pcloud) CredentialName() string { return "auth or access_token" }

// FileName implements protocol.FileReporter.
func (*Pcloud) FileName(r *http.Request) string { return fileName(r) }

// PrepareStatus implements protocol.FormStatus.
func (*Pcloud) PrepareStatus(r *http.Request) *progress.Failure { return prepare(r) }

// ParseStatus implements protocol.Protocol.
func (*Pcloud) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	return ParseQuery(r)
}

// Render implements protocol.Protocol.
func (*Pcloud) Render(s progress.Snapshot) any { return StatusOf(s) }

// Fail implements protocol.Protocol.
func (*Pcloud) Fail(f *progress.Failure) (int, any) { return FailureReply(f) }

// ReadAnswer implements protocol.AnswerReader: uploadfile's metadata of
// the stored files, or its refusal, as pCloud answers both with HTTP 200.
func (*Pcloud) ReadAnswer(answer []byte) protocol.Answer {
	if refused := RefusalOf(answer); refused != "" {
		return protocol.Answer{Refused: refused}
	}
	files, ok := OriginFilesOf(answer)
	if !ok {
		return protocol.Answer{}
	}
	return protocol.Answer{Detail: originFiles(files), Size: int64(len(files))}
}

// UnmarshalCaddyfile sets up the protocol from Caddyfile tokens:
//
//	protocol pcloud {
//		key            <template>
//		owner          <template> | off
//		status_path    <path>
//		websocket_path <path...>
//		upload_path    <path>
//	}
func (p *Pcloud) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return p.UnmarshalBlock(d, "pcloud", func(d *caddyfile.Dispenser) (bool, error) {
		if d.Val() != "upload_path" {
			return false, nil
		}
		return true, protocol.OneArg(d, &p.UploadPath)
	})
}

// Interface guards
var (
	_ protocol.Protocol     = (*Pcloud)(nil)
	_ protocol.Owned        = (*Pcloud)(nil)
	_ protocol.FileReporter = (*Pcloud)(nil)
	_ protocol.FormStatus   = (*Pcloud)(nil)
	_ protocol.AnswerReader = (*Pcloud)(nil)
	_ caddy.Provisioner     = (*Pcloud)(nil)
	_ caddyfile.Unmarshaler = (*Pcloud)(nil)
)
