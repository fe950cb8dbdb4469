// Package config reads settings from flags whose defaults come from environment variables.
//
// Each setting is one flag (-reservation-ttl) and one environment variable
// (HAVIP_RESERVATION_TTL): a flag given on the command line wins, else the variable when it is
// set and not empty, else the flag's default. A program registers its settings on a
// flag.FlagSet with String, Duration, Int64, List or Var, then calls Load, which parses, applies
// the environment, validates, and exits with a clear message on an error; -h lists every
// setting with its variable and default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting names one setting: its flag (without the dash) and its environment variable.
type Setting struct {
	Flag string
	Env  string
}

// String is how messages name the setting: "-reservation-ttl (HAVIP_RESERVATION_TTL)".
func (s Setting) String() string { return "-" + s.Flag + " (" + s.Env + ")" }

// Errorf reports a value of the setting that is not valid, as
// "-reservation-ttl (HAVIP_RESERVATION_TTL) = 500ms: want at least 1s"; format may wrap an
// error with %w.
func (s Setting) Errorf(value any, format string, args ...any) error {
	v := fmt.Sprint(value)
	if _, ok := value.(string); ok {
		v = fmt.Sprintf("%q", value)
	}
	return fmt.Errorf("%s = %s: "+format, append([]any{s, v}, args...)...)
}

// envValue is a flag's value with the environment variable that sets it.
type envValue struct {
	flag.Value
	env string
}

// String may be called on a zero value (flag.Value's contract).
func (v *envValue) String() string {
	if v == nil || v.Value == nil {
		return ""
	}
	return v.Value.String()
}

// Get returns the setting's typed value (flag.Getter).
func (v *envValue) Get() any {
	if g, ok := v.Value.(flag.Getter); ok {
		return g.Get()
	}
	return v.Value.String()
}

// IsBoolFlag lets a boolean setting be given as -flag alone.
func (v *envValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Var registers the setting s on fs with value v, whose current value is the default.
func Var(fs *flag.FlagSet, v flag.Value, s Setting, usage string) {
	fs.Var(&envValue{Value: v, env: s.Env}, s.Flag, usage)
}

// String registers the setting s on fs for *p; the default is *p.
func String(fs *flag.FlagSet, p *string, s Setting, usage string) {
	Var(fs, stringValue{p}, s, usage)
}

// Duration registers the setting s on fs for *p, given as "30s", "1m30s"; the default is *p.
func Duration(fs *flag.FlagSet, p *time.Duration, s Setting, usage string) {
	Var(fs, durationValue{p}, s, usage)
}

// Int64 registers the setting s on fs for *p; the default is *p.
func Int64(fs *flag.FlagSet, p *int64, s Setting, usage string) {
	Var(fs, int64Value{p}, s, usage)
}

// Bool registers the boolean setting s on fs for *p (given as -flag, -flag=false, or the
// variable as true/false/1/0); the default is *p.
func Bool(fs *flag.FlagSet, p *bool, s Setting, usage string) {
	Var(fs, boolValue{p}, s, usage)
}

type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) Get() any         { return *v.p }
func (v boolValue) IsBoolFlag() bool { return true }

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stringValue) Set(s string) error {
	*v.p = s
	return nil
}

func (v stringValue) Get() any { return *v.p }

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 30s or 1m30s")
	}
	*v.p = d
	return nil
}

func (v durationValue) Get() any { return *v.p }

type int64Value struct{ p *int64 }

func (v int64Value) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return errors.New("want an integer")
	}
	*v.p = n
	return nil
}

func (v int64Value) Get() any { return *v.p }

// List registers the setting s on fs for *p, given as comma-separated items; the default is *p.
func List(fs *flag.FlagSet, p *[]string, s Setting, usage string) {
	Var(fs, listValue{p}, s, usage)
}

// listValue is a comma-separated list of non-empty items.
type listValue struct{ p *[]string }

func (l listValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l listValue) Set(s string) error {
	*l.p = Split(s)
	return nil
}

func (l listValue) Get() any { return *l.p }

// Split splits a comma-separated setting into its non-empty parts.
func Split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Env returns the environment variable of a flag registered by this package ("" for another).
func Env(f *flag.Flag) string {
	if v, ok := f.Value.(*envValue); ok {
		return v.env
	}
	return ""
}

// Parse parses args into fs, then sets every flag args did not give from its environment
// variable, when lookup (os.LookupEnv in a program) finds it set and not empty. A bad value in
// the environment is reported with the variable's name.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (every setting is a -flag)", fs.Arg(0))
	}
	return applyEnv(fs, lookup)
}

// ParseCommand is Parse for a command that takes arguments after its flags (fs.Args()).
func ParseCommand(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return applyEnv(fs, lookup)
}

// applyEnv is Parse after the flag package's part.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := Env(f)
		if env == "" || given[f.Name] {
			return
		}
		if v, ok := lookup(env); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (-%s): %w", env, v, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Validator is a configuration that can check itself.
type Validator interface {
	// Validate returns an error naming the first setting that is not valid.
	Validate() error
}

// Load is the start of a program: it parses the command line and the environment into fs
// (Parse), then validates each of cfgs (pointers to what the flags fill, so that they are
// checked as parsed). On -h it exits 0; on an error it prints it and exits 2.
func Load(fs *flag.FlagSet, args []string, cfgs ...Validator) {
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		os.Exit(2) // the flag package has printed the error and the usage
	}
	err := applyEnv(fs, os.LookupEnv)
	for _, c := range cfgs {
		if err == nil {
			err = c.Validate()
		}
	}
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n(%s -h lists every setting)\n", fs.Name(), err, fs.Name())
		os.Exit(2)
	}
}

// NewFlagSet returns an empty flag set for a program whose -h prints summary, every setting
// (PrintDefaults) and then notes: what else the program reads, such as OpenTelemetry's
// variables.
func NewFlagSet(name, summary string, notes ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s [flags]\n\n%s\n\nEach flag may instead be given by its environment variable; a flag on the command\nline wins over the variable, the variable over the default.\n\n", name, summary)
		PrintDefaults(w, fs, os.LookupEnv)
		for _, n := range notes {
			fmt.Fprintf(w, "\n%s\n", n)
		}
	}
	return fs
}

// PrintDefaults writes every flag of fs with its type, usage, environment variable (and its
// value when lookup finds it set) and default.
func PrintDefaults(w io.Writer, fs *flag.FlagSet, lookup func(string) (string, bool)) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name == "value" {
			name = typeName(f.Value)
		}
		fmt.Fprintln(w, strings.TrimRight("  -"+f.Name+" "+name, " "))
		for _, l := range strings.Split(usage, "\n") {
			fmt.Fprintf(w, "    \t%s\n", l)
		}
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		line := "default " + def
		if env := Env(f); env != "" {
			line = "env " + env + ", " + line
			if v, ok := lookup(env); ok && v != "" {
				line += fmt.Sprintf("; now %s=%q", env, v)
			}
		}
		fmt.Fprintf(w, "    \t%s\n", line)
	})
}

// typeName names the type of a setting for -h.
func typeName(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return "value"
	}
	switch x := g.Get().(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case time.Duration:
		return "duration"
	case int, int64, uint, uint64:
		return "int"
	case []string:
		return "list"
	default:
		if x != nil && reflect.TypeOf(x).Kind() == reflect.Map {
			return "list"
		}
		return "value"
	}
}

// Hosts registers the setting s on fs for m: hosts and their addresses, `host-id=IP`, the flag
// repeated or comma-separated; a host given twice is refused. HostAddrs checks the addresses.
func Hosts(fs *flag.FlagSet, m map[string]string, s Setting, usage string) {
	Var(fs, hostsValue(m), s, usage)
}

// HostAddrs is what Hosts collected in m, each address an IPv4 address, or an error naming s.
func HostAddrs(m map[string]string, s Setting) (map[string]netip.Addr, error) {
	out := make(map[string]netip.Addr, len(m))
	for host, ip := range m {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return nil, s.Errorf(hostsValue(m).String(), "host %s: %q is not an IPv4 address", host, ip)
		}
		out[host] = a
	}
	return out, nil
}

// hostsValue collects host-id=IP pairs.
type hostsValue map[string]string

func (h hostsValue) String() string {
	out := make([]string, 0, len(h))
	for host, a := range h {
		out = append(out, host+"="+a)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (h hostsValue) Set(v string) error {
	for _, part := range Split(v) {
		host, ip, ok := strings.Cut(part, "=")
		if !ok || host == "" || ip == "" {
			return fmt.Errorf("want host-id=IP, got %q", part)
		}
		if _, dup := h[host]; dup {
			return fmt.Errorf("host %s given twice", host)
		}
		h[host] = ip
	}
	return nil
}

func (h hostsValue) Get() any { return map[string]string(h) }
