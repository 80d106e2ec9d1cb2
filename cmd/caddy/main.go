// Command caddy is Caddy with the standard modules and upload_progress.
//
// Besides Caddy's own commands it has `caddy demo`, which runs the
// quickstart: the reference upload origin and Caddy with the embedded
// Caddyfile.example in front of it.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-upload-progress/caddy-upload-progress"
)

func main() {
	caddycmd.Main()
}
