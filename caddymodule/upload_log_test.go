package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// TestUploadFieldsInRequestVars: how an upload ended is in its request's
// variables, for {http.vars.upload_*} placeholders, and the module writes
// no line of its own per upload (the access log carries the fields).
func TestUploadFieldsInRequestVars(t *testing.T) {
	for _, tt := range []struct {
		name           string
		status         int
		outcome, error string
	}{
		{name: "completed", status: 201, outcome: "completed"},
		{name: "origin error", status: 409, outcome: "origin_error", error: "origin responded 409 Conflict"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newUploadHandler(t)
			var buf bytes.Buffer
			h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.InfoLevel))
			r := uploadRequest("/log.bin", randomBytes(t, 1234))
			vars := map[string]any{}
			extra := new(caddyhttp.ExtraLogFields)
			ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars)
			ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, extra)
			if err := h.ServeHTTP(httptest.NewRecorder(), r.WithContext(ctx), &origin{status: tt.status}); err != nil {
				t.Fatal(err)
			}
			// As a placeholder shows them ({http.vars.upload_outcome}).
			want := map[string]string{
				"upload_protocol": "shard", "upload_key": "/log.bin", "upload_bytes": "1234", "upload_total": "1234",
				"upload_outcome": tt.outcome, "upload_status": strconv.Itoa(tt.status), "upload_error": tt.error,
			}
			for k, v := range want {
				if got := caddy.ToString(vars[k]); got != v {
					t.Errorf("var %s = %q, want %q", k, got, v)
				}
			}
			if d, err := time.ParseDuration(caddy.ToString(vars["upload_duration"])); err != nil || d < 0 {
				t.Errorf("var upload_duration = %q, want a duration", caddy.ToString(vars["upload_duration"]))
			}
			if buf.Len() != 0 {
				t.Errorf("the module logged a line for a finished upload: %s", buf.Bytes())
			}
		})
	}
}

// TestUploadFieldsLogObject pins the upload's fields of the access log
// line: operators' queries and alerts read them by name.
func TestUploadFieldsLogObject(t *testing.T) {
	f := &uploadFields{protocol: "shard", key: "/a.bin", bytes: 10, total: 20, took: 1500 * time.Millisecond,
		o: progress.Outcome{State: progress.Failed, Reason: "client_aborted", HTTPStatus: 499, Error: "client disconnected after 10 bytes"}}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	b, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{zap.Inline(f)})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"upload_protocol": "shard", "upload_key": "/a.bin", "upload_bytes": float64(10), "upload_total": float64(20),
		"upload_duration": 1.5, "upload_outcome": "client_aborted", "upload_status": float64(499),
		"upload_error": "client disconnected after 10 bytes",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "level" && k != "ts" && k != "msg" {
			t.Errorf("unexpected field %s", k)
		}
	}
}
