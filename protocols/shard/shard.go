// Package shard serves the storage node's progress API: uploads are
// `POST /fso?path=/x&informProgress=true`, their progress is
// `GET /progress?path=/x` and a WebSocket on `/ws/progress?path=/x` (or
// `/progress/ws`), authenticated by the x-user-api-key header.
package shard

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/protocol"
)

func init() {
	caddy.RegisterModule(Shard{})
}

// Shard is the storage node's progress API. An upload is tracked when it
// has a body and informProgress=true in its query; its key is the path
// query parameter and its owner the x-user-api-key header. Status
// endpoints: `/progress` (REST) and `/ws/progress`, `/progress/ws`
// (WebSocket).
type Shard struct {
	protocol.Config

	// Asks the origin about keys the tracker does not know, so that a file
	// uploaded before (or longer ago than the retention) reports
	// completed, as the storage node promises for any existing file.
	// Default: off.
	ExistsProbe *ExistsProbe `json:"exists_probe,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Shard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  protocol.Namespace + ".shard",
		New: func() caddy.Module { return new(Shard) },
	}
}

// Provision sets the defaults and readies the exists probe.
func (s *Shard) Provision(caddy.Context) error {
	s.SetDefaults("/progress", "/ws/progress", "/progress/ws")
	if s.ExistsProbe != nil {
		if err := s.ExistsProbe.provision(); err != nil {
			return fmt.Errorf("exists_probe: %v", err)
		}
	}
	return nil
}

// Cleanup lets go of the probe's idle connections.
func (s *Shard) Cleanup() error {
	if s.ExistsProbe != nil && s.ExistsProbe.client != nil {
		s.ExistsProbe.client.CloseIdleConnections()
	}
	return nil
}

// Tracks implements protocol.Protocol.
func (*Shard) Tracks(r *http.Request) bool { return tracks(r) }

// Key implements protocol.Protocol.
func (*Shard) Key(r *http.Request) string { return key(r) }

// Credential implements protocol.Owned.
func (*Shard) Credential(r *http.Request) string { return r.Header.Get(APIKeyHeader) }

// CredentialName implements protocol.Owned.
func (*Shard) CredentialName() string { return APIKeyHeader + " header" }

// ParseStatus implements protocol.Protocol.
func (*Shard) ParseStatus(r *http.Request) (progress.StatusQuery, *progress.Failure) {
	return ParseQuery(r.URL.Query())
}

// Render implements protocol.Protocol.
func (*Shard) Render(s progress.Snapshot) any { return StatusOf(s) }

// Fail implements protocol.Protocol.
func (*Shard) Fail(f *progress.Failure) (int, any) { return FailureReply(f) }

// Probe implements protocol.Prober.
func (s *Shard) Probe(r *http.Request, owner progress.Owner, key string) (progress.Snapshot, bool) {
	if s.ExistsProbe == nil {
		return progress.Snapshot{}, false
	}
	return s.ExistsProbe.lookup(r, owner, key), true
}

// UnmarshalCaddyfile sets up the protocol from Caddyfile tokens:
//
//	protocol shard {
//		key            <template>
//		owner          <template> | off
//		status_path    <path>
//		websocket_path <path...>
//		exists_probe   [<method>] <url> {
//			forward_headers <header...>
//			cache_for       <duration>
//			timeout         <duration>
//		}
//	}
func (s *Shard) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return s.UnmarshalBlock(d, "shard", func(d *caddyfile.Dispenser) (bool, error) {
		if d.Val() != "exists_probe" {
			return false, nil
		}
		p, err := unmarshalExistsProbe(d)
		s.ExistsProbe = p
		return true, err
	})
}

// Interface guards
var (
	_ protocol.Protocol     = (*Shard)(nil)
	_ protocol.Owned        = (*Shard)(nil)
	_ protocol.Prober       = (*Shard)(nil)
	_ caddy.Provisioner     = (*Shard)(nil)
	_ caddy.CleanerUpper    = (*Shard)(nil)
	_ caddyfile.Unmarshaler = (*Shard)(nil)
)
