package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestUploadFinishedLogLine pins the one structured line per finished
// upload: operators' queries and alerts read these fields by name.
func TestUploadFinishedLogLine(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		status                  int
		outcome, error          string
		wantStatus, wantEntries int
		level                   zapcore.Level
	}{
		{name: "completed", status: 201, outcome: "completed", wantStatus: 201, wantEntries: 1, level: zap.InfoLevel},
		{name: "origin error", status: 409, outcome: "origin_error", error: "origin responded 409 Conflict", wantStatus: 409, wantEntries: 1, level: zap.InfoLevel},
		{name: "level above info", status: 201, wantEntries: 0, level: zap.WarnLevel},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newUploadHandler(t)
			var buf bytes.Buffer
			h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), tt.level))
			body := randomBytes(t, 1234)
			if err := h.ServeHTTP(httptest.NewRecorder(), uploadRequest("/log.bin", body), &origin{status: tt.status}); err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != tt.wantEntries {
				t.Fatalf("%d log lines, want %d: %s", len(lines), tt.wantEntries, buf.Bytes())
			}
			if tt.wantEntries == 0 {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(lines[0], &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"level": "info", "msg": "upload finished", "protocol": "shard", "key": "/log.bin",
				"bytes": float64(1234), "total": float64(1234), "outcome": tt.outcome,
				"status": float64(tt.wantStatus), "error": tt.error,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v (line %s)", k, got[k], v, lines[0])
				}
			}
			if d, ok := got["duration"].(float64); !ok || d < 0 {
				t.Errorf("duration = %#v, want seconds (line %s)", got["duration"], lines[0])
			}
			if len(got) != len(want)+2 { // + ts and duration
				t.Errorf("fields %v, want exactly %v, ts and duration", got, want)
			}
		})
	}
}
