package etcdtest

import (
	"flag"
	"testing"
)

// TestWantFsync: Main's etcd syncs its writes when benchmarks run and not for tests, unless
// HAVIP_ETCDTEST_FSYNC says otherwise.
func TestWantFsync(t *testing.T) {
	bench := flag.Lookup("test.bench").Value.String()
	t.Cleanup(func() { _ = flag.Set("test.bench", bench) })
	for _, tc := range []struct {
		bench, env string
		want       bool
		err        bool
	}{
		{bench: "", want: false},
		{bench: ".", want: true},
		{bench: "BenchmarkX", env: "0", want: false},
		{bench: "", env: "1", want: true},
		{bench: "", env: "sometimes", err: true},
	} {
		if err := flag.Set("test.bench", tc.bench); err != nil {
			t.Fatal(err)
		}
		t.Setenv(FsyncEnv, tc.env)
		got, err := wantFsync()
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("-test.bench=%q %s=%q: got %v, %v; want %v (error: %v)", tc.bench, FsyncEnv, tc.env, got, err, tc.want, tc.err)
		}
	}
}
