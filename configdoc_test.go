package uploadprogress

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/caddy-upload-progress/caddy-upload-progress"

// configType is a struct type of the module's source, with the imports of
// its file for resolving the types its fields name.
type configType struct {
	pkg     string // import path
	name    string
	st      *ast.StructType
	imports map[string]string // name in the file → import path
}

// Every JSON field of the configuration (the handler's, and every
// protocol and store module's with the structs they embed or hold) has a doc
// comment of its own, which is its user documentation (Caddy's JSON docs
// show it), and says its default or that it is required; a flag (bool)
// is off by default.
func TestConfigFieldsAreDocumented(t *testing.T) {
	// Every package of the module: the Caddy modules are found by their
	// CaddyModule method wherever they are.
	var dirs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]*configType{}
	var roots []string
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		pkg := modulePath
		if dir != "." {
			pkg += "/" + filepath.ToSlash(dir)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			imports := map[string]string{}
			for _, is := range f.Imports {
				p, _ := strconv.Unquote(is.Path.Value)
				name := p[strings.LastIndex(p, "/")+1:]
				if is.Name != nil {
					name = is.Name.Name
				}
				imports[name] = p
			}
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok {
							if st, ok := ts.Type.(*ast.StructType); ok {
								types[pkg+"."+ts.Name.Name] = &configType{pkg: pkg, name: ts.Name.Name, st: st, imports: imports}
							}
						}
					}
				case *ast.FuncDecl:
					// A Caddy module's config is the type with CaddyModule.
					if d.Name.Name == "CaddyModule" && d.Recv != nil && len(d.Recv.List) == 1 {
						if id, ok := unpointer(d.Recv.List[0].Type).(*ast.Ident); ok {
							roots = append(roots, pkg+"."+id.Name)
						}
					}
				}
			}
		}
	}
	if len(roots) < 8 {
		t.Fatalf("found %d Caddy modules (%v), want the handler, six protocols and a store", len(roots), roots)
	}

	seen := map[string]bool{}
	queue := roots
	checked := 0
	for len(queue) > 0 {
		key := queue[0]
		queue = queue[1:]
		ct := types[key]
		if ct == nil || seen[key] {
			continue
		}
		seen[key] = true
		for _, f := range ct.st.Fields.List {
			// Structs it embeds or holds are configuration too.
			if ref := ct.resolve(f.Type); ref != "" {
				queue = append(queue, ref)
			}
			tag := ""
			if f.Tag != nil {
				s, _ := strconv.Unquote(f.Tag.Value)
				tag, _, _ = strings.Cut(reflect.StructTag(s).Get("json"), ",")
			}
			if len(f.Names) == 0 || tag == "" || tag == "-" || !f.Names[0].IsExported() {
				continue
			}
			checked++
			where := ct.name + "." + f.Names[0].Name + " (" + tag + ")"
			if len(f.Names) > 1 {
				t.Errorf("%s shares its declaration with other fields: give each its own doc comment", where)
			}
			doc := strings.TrimSpace(f.Doc.Text())
			if doc == "" {
				t.Errorf("%s has no doc comment", where)
				continue
			}
			if id, ok := f.Type.(*ast.Ident); ok && id.Name == "bool" {
				continue
			}
			if lower := strings.ToLower(doc); !strings.Contains(lower, "default") && !strings.Contains(lower, "required") {
				t.Errorf("%s: its doc comment says neither its default nor that it is required:\n%s", where, doc)
			}
		}
	}
	if checked < 30 {
		t.Fatalf("checked %d fields; the configuration has more", checked)
	}
}

// resolve returns the key of the module's struct type that a field's type
// names (through pointers, slices and maps), or "".
func (ct *configType) resolve(e ast.Expr) string {
	switch e := unpointer(e).(type) {
	case *ast.Ident:
		return ct.pkg + "." + e.Name
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && strings.HasPrefix(ct.imports[x.Name], modulePath+"/") {
			return ct.imports[x.Name] + "." + e.Sel.Name
		}
	case *ast.ArrayType:
		return ct.resolve(e.Elt)
	case *ast.MapType:
		return ct.resolve(e.Value)
	}
	return ""
}

func unpointer(e ast.Expr) ast.Expr {
	if s, ok := e.(*ast.StarExpr); ok {
		return s.X
	}
	return e
}
