// Package configtest checks that a program's flags cover its configuration structs.
package configtest

import (
	"bytes"
	"flag"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/config"
)

// Check fails tb unless the flags of fs fill cfgs (pointers to structs) exactly: every flag has
// an environment variable, a usage text and a line in -h showing its variable and default; each
// flag sets exactly one field; and every exported field (of nested structs too) is set by some
// flag, except those named in unflagged ("Config.HaVip.IpamAddr": type name, then the path).
// It sets each flag to a new value to see which field changes, so cfgs are changed afterwards.
func Check(tb testing.TB, fs *flag.FlagSet, unflagged []string, cfgs ...any) {
	tb.Helper()
	var fields []field
	for _, c := range cfgs {
		v := reflect.ValueOf(c)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			tb.Fatalf("configtest.Check: %T is not a pointer to a struct", c)
		}
		fields = walk(fields, v.Elem().Type().Name(), v.Elem())
	}
	var help bytes.Buffer
	config.PrintDefaults(&help, fs, func(string) (string, bool) { return "", false })
	setBy := map[string]string{} // field → flag
	fs.VisitAll(func(f *flag.Flag) {
		env := config.Env(f)
		if env == "" || !strings.HasPrefix(env, "HAVIP_") {
			tb.Errorf("-%s has no HAVIP_* environment variable (got %q)", f.Name, env)
		}
		if strings.TrimSpace(f.Usage) == "" {
			tb.Errorf("-%s has no usage", f.Name)
		}
		if !strings.Contains(help.String()+"\n", "  -"+f.Name+"\n") && !strings.Contains(help.String(), "  -"+f.Name+" ") || !strings.Contains(help.String(), "env "+env+", default ") {
			tb.Errorf("-h does not show -%s with its variable and default:\n%s", f.Name, help.String())
		}
		before := snapshot(fields)
		s, err := sample(f.Value)
		if err != nil {
			tb.Errorf("-%s: %v", f.Name, err)
			return
		}
		if err := fs.Set(f.Name, s); err != nil {
			tb.Errorf("-%s=%s: %v", f.Name, s, err)
			return
		}
		var changed []string
		for i, after := range snapshot(fields) {
			if after != before[i] {
				changed = append(changed, fields[i].path)
			}
		}
		if len(changed) != 1 {
			tb.Errorf("-%s sets fields %v, want exactly one", f.Name, changed)
			return
		}
		if other, ok := setBy[changed[0]]; ok {
			tb.Errorf("-%s and -%s both set %s", other, f.Name, changed[0])
		}
		setBy[changed[0]] = f.Name
	})
	skip := map[string]bool{}
	for _, u := range unflagged {
		skip[u] = true
	}
	for _, f := range fields {
		if _, ok := setBy[f.path]; !ok && !skip[f.path] {
			tb.Errorf("no flag sets %s", f.path)
		}
		if _, ok := setBy[f.path]; ok && skip[f.path] {
			tb.Errorf("%s is said to have no flag, but -%s sets it", f.path, setBy[f.path])
		}
	}
}

// field is one exported leaf field of a configuration.
type field struct {
	path string
	v    reflect.Value
}

// walk appends the exported leaf fields of the struct v, recursing into nested structs.
func walk(out []field, path string, v reflect.Value) []field {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		p := path + "." + sf.Name
		if sf.Type.Kind() == reflect.Struct {
			out = walk(out, p, v.Field(i))
			continue
		}
		out = append(out, field{p, v.Field(i)})
	}
	return out
}

// snapshot renders every field's value (maps and slices deeply).
func snapshot(fields []field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = fmt.Sprintf("%#v", f.v.Interface())
	}
	return out
}

// sample returns a value for a flag that differs from its current one.
func sample(v flag.Value) (string, error) {
	g, ok := v.(flag.Getter)
	if !ok {
		return "", fmt.Errorf("value %T has no Get", v)
	}
	switch x := g.Get().(type) {
	case string:
		return x + "configtest", nil
	case bool:
		return fmt.Sprint(!x), nil
	case time.Duration:
		return (x + 67*time.Minute).String(), nil
	case int64:
		return fmt.Sprint(x + 7), nil
	case int:
		return fmt.Sprint(x + 7), nil
	case []string:
		return strings.Join(append(x, "configtest"), ","), nil
	case map[string]string:
		return "configtest=configtest", nil
	default:
		return "", fmt.Errorf("no sample value for type %T", x)
	}
}
