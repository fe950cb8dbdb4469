package config_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhavip/havip/platform/config"
)

// settings is a configuration with one setting of each kind.
type settings struct {
	Addr  string
	TTL   time.Duration
	Size  int64
	Peers []string
}

var (
	addrSetting  = config.Setting{Flag: "addr", Env: "TEST_ADDR"}
	ttlSetting   = config.Setting{Flag: "ttl", Env: "TEST_TTL"}
	sizeSetting  = config.Setting{Flag: "size", Env: "TEST_SIZE"}
	peersSetting = config.Setting{Flag: "peers", Env: "TEST_PEERS"}
)

func (s *settings) register(fs *flag.FlagSet) {
	config.String(fs, &s.Addr, addrSetting, "where to listen")
	config.Duration(fs, &s.TTL, ttlSetting, "how long")
	config.Int64(fs, &s.Size, sizeSetting, "how much")
	config.List(fs, &s.Peers, peersSetting, "who else")
}

// env is an environment for Parse.
type env map[string]string

func (e env) lookup(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

func defaults() settings {
	return settings{Addr: "127.0.0.1:1", TTL: 30 * time.Second, Size: 7, Peers: []string{"a", "b"}}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  env
		want settings
	}{
		{name: "defaults", want: defaults()},
		{name: "environment", env: env{"TEST_ADDR": "0.0.0.0:2", "TEST_TTL": "1m", "TEST_SIZE": "0x10", "TEST_PEERS": " c, ,d "},
			want: settings{Addr: "0.0.0.0:2", TTL: time.Minute, Size: 16, Peers: []string{"c", "d"}}},
		{name: "an empty variable is unset", env: env{"TEST_ADDR": "", "TEST_TTL": ""}, want: defaults()},
		{name: "flags win over the environment", args: []string{"-addr", "h:3", "-ttl=2s", "-peers="}, env: env{"TEST_ADDR": "0.0.0.0:2", "TEST_TTL": "1m", "TEST_SIZE": "9"},
			want: settings{Addr: "h:3", TTL: 2 * time.Second, Size: 9, Peers: nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := defaults()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			got.register(fs)
			if err := config.Parse(fs, tc.args, tc.env.lookup); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  env
		want string
	}{
		{name: "bad duration in the environment", env: env{"TEST_TTL": "soon"}, want: `TEST_TTL="soon" (-ttl): want a duration such as 30s or 1m30s`},
		{name: "bad integer in the environment", env: env{"TEST_SIZE": "big"}, want: `TEST_SIZE="big" (-size): want an integer`},
		{name: "both reported, by flag name", env: env{"TEST_SIZE": "big", "TEST_TTL": "soon"},
			want: "TEST_SIZE=\"big\" (-size): want an integer\nTEST_TTL=\"soon\" (-ttl): want a duration such as 30s or 1m30s"},
		{name: "bad flag", args: []string{"-ttl", "soon"}, want: `invalid value "soon" for flag -ttl: want a duration such as 30s or 1m30s`},
		{name: "argument", args: []string{"-ttl", "1s", "extra"}, want: `unexpected argument "extra" (every setting is a -flag)`},
		{name: "a bad variable is ignored when the flag is given", args: []string{"-ttl", "1s", "-size=1"}, env: env{"TEST_TTL": "soon", "TEST_SIZE": "big"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := defaults()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(new(bytes.Buffer))
			s.register(fs)
			err := config.Parse(fs, tc.args, tc.env.lookup)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("error: got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSettingErrorf(t *testing.T) {
	s := config.Setting{Flag: "reservation-ttl", Env: "HAVIP_RESERVATION_TTL"}
	for _, tc := range []struct {
		name  string
		value any
		want  string
	}{
		{"duration", 500 * time.Millisecond, "-reservation-ttl (HAVIP_RESERVATION_TTL) = 500ms: want at least 1s"},
		{"string quoted", "", `-reservation-ttl (HAVIP_RESERVATION_TTL) = "": want at least 1s`},
		{"number", 3, "-reservation-ttl (HAVIP_RESERVATION_TTL) = 3: want at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Errorf(tc.value, "want at least %s", time.Second).Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSettingErrorfWraps(t *testing.T) {
	err := config.Setting{Flag: "keys", Env: "HAVIP_API_KEYS_FILE"}.Errorf("k", "%w", io.ErrUnexpectedEOF)
	if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != `-keys (HAVIP_API_KEYS_FILE) = "k": unexpected EOF` {
		t.Errorf("got %v, want it to wrap io.ErrUnexpectedEOF", err)
	}
}

func TestPrintDefaults(t *testing.T) {
	s := defaults()
	s.Addr = ""
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	s.register(fs)
	fs.String("plain", "x", "a flag with no variable")
	var got bytes.Buffer
	config.PrintDefaults(&got, fs, env{"TEST_TTL": "1m"}.lookup)
	want := `  -addr string
    	where to listen
    	env TEST_ADDR, default ""
  -peers list
    	who else
    	env TEST_PEERS, default a,b
  -plain string
    	a flag with no variable
    	default x
  -size int
    	how much
    	env TEST_SIZE, default 7
  -ttl duration
    	how long
    	env TEST_TTL, default 30s; now TEST_TTL="1m"
`
	if diff := cmp.Diff(want, got.String()); diff != "" {
		t.Errorf("PrintDefaults (-want +got):\n%s", diff)
	}
}

func TestNewFlagSetUsage(t *testing.T) {
	fs := config.NewFlagSet("prog", "prog does things.", "Also reads OTEL_X.")
	var out bytes.Buffer
	fs.SetOutput(&out)
	var s settings
	s.register(fs)
	if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: prog [flags]\n\nprog does things.\n", "  -ttl duration\n", "env TEST_TTL, default 0s\n", "\nAlso reads OTEL_X.\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"a", []string{"a"}},
		{"http://e1:2379, http://e2:2379,", []string{"http://e1:2379", "http://e2:2379"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, config.Split(tc.in)); diff != "" {
				t.Errorf("Split(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var s settings
	s.register(fs)
	fs.String("plain", "", "no variable")
	got := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { got[f.Name] = config.Env(f) })
	want := map[string]string{"addr": "TEST_ADDR", "ttl": "TEST_TTL", "size": "TEST_SIZE", "peers": "TEST_PEERS", "plain": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
}

// A program's settings: each a flag whose default is its environment variable when that is set.
func ExampleParse() {
	cfg := struct {
		TTL   time.Duration
		Peers []string
	}{TTL: 30 * time.Second}
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	config.Duration(fs, &cfg.TTL, config.Setting{Flag: "ttl", Env: "PROG_TTL"}, "how long")
	config.List(fs, &cfg.Peers, config.Setting{Flag: "peers", Env: "PROG_PEERS"}, "who else")
	environment := map[string]string{"PROG_TTL": "1m", "PROG_PEERS": "a,b"}
	lookup := func(k string) (string, bool) { v, ok := environment[k]; return v, ok }
	if err := config.Parse(fs, []string{"-ttl", "5s"}, lookup); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cfg.TTL, cfg.Peers)
	// Output: 5s [a b]
}

// TestHosts: a Hosts flag takes host-id=IP, repeated or comma-separated; a host given twice is
// refused rather than one of its addresses silently kept; HostAddrs refuses what is not an
// IPv4 address, naming the setting.
func TestHosts(t *testing.T) {
	s := config.Setting{Flag: "underlay", Env: "HAVIP_TEST_UNDERLAY"}
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string
		err  string
	}{
		{name: "repeated", args: []string{"-underlay", "h1=192.168.0.1", "-underlay", "h2=192.168.0.2"}, want: map[string]string{"h1": "192.168.0.1", "h2": "192.168.0.2"}},
		{name: "comma-separated", args: []string{"-underlay", "h1=192.168.0.1,h2=192.168.0.2"}, want: map[string]string{"h1": "192.168.0.1", "h2": "192.168.0.2"}},
		{name: "no address", args: []string{"-underlay", "h1"}, err: `want host-id=IP, got "h1"`},
		{name: "no host", args: []string{"-underlay", "=192.168.0.1"}, err: `want host-id=IP, got "=192.168.0.1"`},
		{name: "a host twice", args: []string{"-underlay", "h1=192.168.0.1,h1=192.168.0.9"}, err: "host h1 given twice"},
		{name: "not an address", args: []string{"-underlay", "h2=h2.example"}, err: `-underlay (HAVIP_TEST_UNDERLAY) = "h2=h2.example": host h2: "h2.example" is not an IPv4 address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			config.Hosts(fs, m, s, "hosts")
			err := config.Parse(fs, tc.args, func(string) (string, bool) { return "", false })
			var addrs map[string]netip.Addr
			if err == nil {
				addrs, err = config.HostAddrs(m, s)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, m); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
			for h, a := range tc.want {
				if addrs[h].String() != a {
					t.Errorf("HostAddrs[%s] = %v, want %s", h, addrs[h], a)
				}
			}
		})
	}
}
