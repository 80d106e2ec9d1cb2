package caddymodule

// The handler's tests load the protocol and store modules this repository has.
import (
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/nginx"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/pcloud"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/sandbox"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/protocols/tus"
	_ "github.com/caddy-upload-progress/caddy-upload-progress/stores/redis"
)
