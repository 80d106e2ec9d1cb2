package caddymodule

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// benchmarkUploads serves 64 KiB uploads (W2 of the performance harness)
// through the handler, or straight to the next handler when tracked is
// false, with a JSON logger writing nowhere, so that the difference is
// what tracking costs per upload.
func benchmarkUploads(b *testing.B, tracked bool) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{Zone: "bench-" + strconv.FormatBool(tracked), DisableOwnerCheck: true}
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	defer h.Cleanup()
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	body := make([]byte, 64<<10)
	buf := make([]byte, 32<<10)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := httptest.NewRequest("POST", "/fso?path=/f"+strconv.Itoa(i%1000)+"&informProgress=true", bytes.NewReader(body))
		caddyhttp.NewTestReplacer(r)
		w := httptest.NewRecorder()
		if tracked {
			h.ServeHTTP(w, r, next)
		} else {
			next.ServeHTTP(w, r)
		}
	}
}

func BenchmarkServeUploadPlain(b *testing.B)   { benchmarkUploads(b, false) }
func BenchmarkServeUploadTracked(b *testing.B) { benchmarkUploads(b, true) }
