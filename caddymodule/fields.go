package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// uploadFields is how a tracked upload ended, as fields of its request's
// access log line and as request variables ({http.vars.upload_outcome}).
// Caddy writes the access log line, where the site turns access logs on;
// the module writes no line of its own per upload.
type uploadFields struct {
	protocol, key string
	bytes, total  int64
	took          time.Duration
	o             progress.Outcome
}

// MarshalLogObject adds the fields inline, as if passed one by one, but as
// one zap.Field: a variadic slice of eight fields would be an allocation
// of half a kilobyte per upload.
func (l *uploadFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("upload_protocol", l.protocol)
	enc.AddString("upload_key", l.key)
	enc.AddInt64("upload_bytes", l.bytes)
	enc.AddInt64("upload_total", l.total)
	enc.AddDuration("upload_duration", l.took)
	enc.AddString("upload_outcome", l.o.Reason)
	enc.AddInt("upload_status", l.o.HTTPStatus)
	enc.AddString("upload_error", l.o.Error)
	return nil
}

// setVars sets the fields as request variables, for placeholders in
// headers and log_append.
func (l *uploadFields) setVars(ctx context.Context) {
	caddyhttp.SetVar(ctx, "upload_protocol", l.protocol)
	caddyhttp.SetVar(ctx, "upload_key", l.key)
	caddyhttp.SetVar(ctx, "upload_bytes", l.bytes)
	caddyhttp.SetVar(ctx, "upload_total", l.total)
	caddyhttp.SetVar(ctx, "upload_duration", l.took)
	caddyhttp.SetVar(ctx, "upload_outcome", l.o.Reason)
	caddyhttp.SetVar(ctx, "upload_status", l.o.HTTPStatus)
	caddyhttp.SetVar(ctx, "upload_error", l.o.Error)
}
