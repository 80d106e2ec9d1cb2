package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/progresstest"
)

// A store whose server is not up is no config error (the zone starts
// unavailable), so these need no Redis.
const storeAt1 = `{"name":"redis","address":["127.0.0.1:1"],"secret":"sixteen bytes at least"}`

func TestStoreNeedsSecret(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), StoreRaw: json.RawMessage(`{"name":"redis","address":["127.0.0.1:1"]}`)}
	_, err := provisionHandler(t, h)
	if err == nil || !strings.Contains(err.Error(), "secret is required") {
		t.Fatalf("a shared store without a secret: %v", err)
	}
	h = &Handler{Zone: uniqueZone(t), StoreRaw: json.RawMessage(`{"name":"redis","secret":"short"}`)}
	if _, err := provisionHandler(t, h); err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
		t.Fatalf("a short secret: %v", err)
	}
}

func TestZoneSecretIsTheStores(t *testing.T) {
	h := &Handler{Zone: uniqueZone(t), StoreRaw: json.RawMessage(storeAt1)}
	provisionForTest(t, h)
	if string(h.zone.secret) != "sixteen bytes at least" {
		t.Fatalf("zone secret %q", h.zone.secret)
	}
	other := &Handler{Zone: uniqueZone(t)}
	provisionForTest(t, other)
	if other.zone.secret != nil {
		t.Fatal("a zone in memory has a configured secret")
	}
}

func TestHandlersSharingAZoneNameOneStore(t *testing.T) {
	zone := uniqueZone(t)
	provisionForTest(t, &Handler{Zone: zone, StoreRaw: json.RawMessage(storeAt1)})
	// The same store again is fine.
	provisionForTest(t, &Handler{Zone: zone, StoreRaw: json.RawMessage(storeAt1)})
	for _, raw := range []string{
		"", // memory
		`{"name":"redis","address":["127.0.0.1:2"],"secret":"sixteen bytes at least"}`,
		`{"name":"redis","address":["127.0.0.1:1"],"secret":"another secret, 16+ bytes"}`,
	} {
		h := &Handler{Zone: zone}
		if raw != "" {
			h.StoreRaw = json.RawMessage(raw)
		}
		_, err := provisionHandler(t, h)
		if err == nil || !strings.Contains(err.Error(), "must name the same store") {
			t.Errorf("store %s in a zone kept in another: %v", raw, err)
		}
	}
}

func TestStoreCaddyfile(t *testing.T) {
	h := progresstest.Unmarshal[Handler](t, `upload_progress {
		store redis {
			address 10.0.0.1:6379 10.0.0.2:6379
			password {env.REDIS_PASSWORD}
			secret {env.UPLOAD_PROGRESS_SECRET}
			flush_interval 50ms
			lease 5s
		}
	}`)
	want := `{"address":["10.0.0.1:6379","10.0.0.2:6379"],"flush_interval":50000000,"lease":5000000000,"name":"redis","password":"{env.REDIS_PASSWORD}","secret":"{env.UPLOAD_PROGRESS_SECRET}"}`
	var got, exp any
	_ = json.Unmarshal(h.StoreRaw, &got)
	_ = json.Unmarshal([]byte(want), &exp)
	if b1, b2 := mustJSON(got), mustJSON(exp); b1 != b2 {
		t.Fatalf("store JSON %s, want %s", b1, b2)
	}
	progresstest.WantCaddyfileError[Handler](t, `upload_progress {
		store nosuch
	}`, `unknown store "nosuch"`)
	progresstest.WantCaddyfileError[Handler](t, `upload_progress {
		store redis {
			lease soon
		}
	}`, "lease")
	progresstest.WantCaddyfileError[Handler](t, `upload_progress {
		store redis {
			color blue
		}
	}`, `unknown store redis option "color"`)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
