package caddymodule

import (
	"context"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// uploadFields is how a tracked upload ended, as fields of its request's
// access log line and as request variables ({http.vars.upload_outcome},
// see uploadVars).
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

// uploadVarNames are the request variables of an upload's ending, in the
// order of uploadVar's fields.
var uploadVarNames = [...]string{
	"upload_protocol", "upload_key", "upload_bytes", "upload_total",
	"upload_duration", "upload_outcome", "upload_status", "upload_error",
}

// uploadVars are the request variables of an upload's ending. They are set
// before the request goes on and read the fields when a placeholder asks,
// once the upload has ended: Caddy's variables are a map without a lock,
// which reverse_proxy's dialer reads on a goroutine of its own, so a
// variable set after the request has gone on would race with it.
type uploadVars [len(uploadVarNames)]uploadVar

// uploadVar is one variable of uploadVars.
type uploadVar struct {
	l     *uploadFields
	field int
}

// bind sets the variables of l in ctx's request variables.
func (v *uploadVars) bind(ctx context.Context, l *uploadFields) {
	for i, name := range uploadVarNames {
		v[i] = uploadVar{l, i}
		caddyhttp.SetVar(ctx, name, &v[i])
	}
}

// String renders the variable as a placeholder shows it: "" until the
// upload has ended.
func (v *uploadVar) String() string {
	l := v.l
	if l.protocol == "" {
		return ""
	}
	switch v.field {
	case 0:
		return l.protocol
	case 1:
		return l.key
	case 2:
		return strconv.FormatInt(l.bytes, 10)
	case 3:
		return strconv.FormatInt(l.total, 10)
	case 4:
		return l.took.String()
	case 5:
		return l.o.Reason
	case 6:
		return strconv.Itoa(l.o.HTTPStatus)
	default:
		return l.o.Error
	}
}
