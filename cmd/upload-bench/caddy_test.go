package main

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/caddy-upload-progress/caddy-upload-progress/caddymodule"
)

// TestUploadLogLevelRoutesTheModulesLogger checks what -upload-log-level
// is for: the module's logger, and only it, is taken out of Caddy's default
// log and written at the level asked for; without the flag Caddy's logging
// is left as it is.
func TestUploadLogLevelRoutesTheModulesLogger(t *testing.T) {
	logger := string(caddymodule.Handler{}.CaddyModule().ID) // Caddy names a module's logger by its ID
	type log struct {
		Level   string   `json:"level"`
		Include []string `json:"include"`
		Exclude []string `json:"exclude"`
	}
	var cfg struct {
		Logging *struct {
			Logs map[string]log `json:"logs"`
		} `json:"logging"`
	}

	raw, err := caddyConfig(1, 2, "127.0.0.1:3", "{}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Logging != nil {
		t.Fatalf("without the flag, logging = %+v, want Caddy's default", *cfg.Logging)
	}

	raw, err = caddyConfig(1, 2, "127.0.0.1:3", "{}", "", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Logging == nil {
		t.Fatal("with -upload-log-level warn, no logging config")
	}
	def := cfg.Logging.Logs["default"]
	if !slices.Equal(def.Exclude, []string{logger}) || len(def.Include) != 0 || def.Level != "" {
		t.Errorf("default log = %+v, want it to exclude only %s", def, logger)
	}
	var mine []log
	for name, l := range cfg.Logging.Logs {
		if name != "default" {
			mine = append(mine, l)
		}
	}
	if len(mine) != 1 || !slices.Equal(mine[0].Include, []string{logger}) || mine[0].Level != "WARN" {
		t.Errorf("other logs = %+v, want one with %s at WARN", mine, logger)
	}
}

func TestUploadLogLevelFlag(t *testing.T) {
	for _, level := range []string{"", "warn", "INFO", "debug", "Error"} {
		if _, err := parseFlags([]string{"-upload-log-level", level}); err != nil {
			t.Errorf("-upload-log-level %q: %v", level, err)
		}
	}
	for _, level := range []string{"quiet", "warning", "5"} {
		if _, err := parseFlags([]string{"-upload-log-level", level}); err == nil {
			t.Errorf("-upload-log-level %q accepted, want an error before Caddy starts", level)
		}
	}
}
