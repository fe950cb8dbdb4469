package ghz

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestParse reads a report as ghz v0.120.0 writes it with --format json (cut to what parse
// reads, plus a field it ignores).
func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		want    Result
		wantErr string
	}{
		{
			name: "every request listed, one failed",
			json: `{"endReason":"normal","count":3,"total":30000000,"rps":100,
				"details":[{"latency":1000000,"error":"","status":"OK"},
				           {"latency":3000000,"error":"rpc error: code = NotFound desc = gone","status":"NotFound"},
				           {"latency":2000000,"error":"","status":"OK"}]}`,
			want: Result{Count: 3, Elapsed: 30 * time.Millisecond, Latencies: []time.Duration{time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond},
				Errors: map[string]int{"rpc error: code = NotFound desc = gone": 1}},
		},
		{name: "ended early", json: `{"endReason":"timeout","count":0,"details":[]}`, wantErr: "ended early"},
		{name: "details missing", json: `{"endReason":"normal","count":2,"details":[{"latency":1}]}`, wantErr: "fewer requests"},
		{name: "not JSON", json: `Summary: ...`, wantErr: "JSON report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parse([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
			if got.ErrorCount() != 1 {
				t.Errorf("ErrorCount = %d, want 1", got.ErrorCount())
			}
		})
	}
}

// TestMerge: merged rounds count as one run of all their requests.
func TestMerge(t *testing.T) {
	t.Parallel()
	var all Result
	all.Merge(Result{Count: 2, Elapsed: time.Second, Latencies: []time.Duration{1, 2}})
	all.Merge(Result{Count: 1, Elapsed: 2 * time.Second, Latencies: []time.Duration{3}, Errors: map[string]int{"e": 1}})
	all.Merge(Result{Count: 1, Elapsed: time.Second, Latencies: []time.Duration{4}, Errors: map[string]int{"e": 2}})
	want := Result{Count: 4, Elapsed: 4 * time.Second, Latencies: []time.Duration{1, 2, 3, 4}, Errors: map[string]int{"e": 3}}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
}
