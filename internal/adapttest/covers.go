package adapttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Covers fails the test unless every JSON field of config (a pointer to
// the config struct of the handler or of a protocol module, with the
// fields of its embedded structs and of the structs it holds, such as
// exists_probe.cache_for) is set in the golden JSON of some case in
// testdata/adapt: in the upload_progress handler's object when protocol
// is "", else in the object of that protocol. except names the fields the
// module refuses, which no Caddyfile that loads can set.
func Covers(t *testing.T, config any, protocol string, except ...string) {
	t.Helper()
	covers(t, config, func(handler map[string]any) []map[string]any {
		if protocol == "" {
			return []map[string]any{handler}
		}
		var found []map[string]any
		ps, _ := handler["protocols"].([]any)
		for _, p := range ps {
			if pm, ok := p.(map[string]any); ok && pm["name"] == protocol {
				found = append(found, pm)
			}
		}
		return found
	}, except)
}

// CoversStore is Covers for the config of a store module, named name, in
// the handler's store object.
func CoversStore(t *testing.T, config any, name string, except ...string) {
	t.Helper()
	covers(t, config, func(handler map[string]any) []map[string]any {
		if sm, ok := handler["store"].(map[string]any); ok && sm["name"] == name {
			return []map[string]any{sm}
		}
		return nil
	}, except)
}

// covers checks that the fields of config are set in the objects that
// pick finds in the upload_progress handlers of the golden adaptations.
func covers(t *testing.T, config any, pick func(handler map[string]any) []map[string]any, except []string) {
	t.Helper()
	want := jsonFields(reflect.TypeOf(config).Elem(), "")
	files, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/adapt/*.json (%v)", err)
	}
	set := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, h := range handlers(v) {
			for _, obj := range pick(h) {
				keyPaths(obj, "", set)
			}
		}
	}
	for _, f := range want {
		if !set[f] && !slices.Contains(except, f) {
			t.Errorf("no case in testdata/adapt sets %s: add a Caddyfile with its option", f)
		}
	}
}

// jsonFields lists the JSON names of t's fields, dotted under prefix for
// the fields of a struct it holds; json.RawMessage and other non-struct
// values are leaves.
func jsonFields(t reflect.Type, prefix string) []string {
	var fields []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			fields = append(fields, jsonFields(f.Type, prefix)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields = append(fields, prefix+name)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			fields = append(fields, jsonFields(ft, prefix+name+".")...)
		}
	}
	return fields
}

// handlers finds the objects of the upload_progress handlers in an
// adapted config.
func handlers(v any) []map[string]any {
	var found []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "upload_progress" {
				found = append(found, v)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return found
}

// keyPaths adds the dotted paths of obj's keys to set, through objects
// (not arrays: a list of protocols is a field, not a struct).
func keyPaths(obj map[string]any, prefix string, set map[string]bool) {
	for k, v := range obj {
		set[prefix+k] = true
		if m, ok := v.(map[string]any); ok {
			keyPaths(m, prefix+k+".", set)
		}
	}
}
