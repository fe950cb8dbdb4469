package idseq_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/idseq"
)

// counter is the counter key's value, as stored.
type counter struct {
	Seed      uint64 `json:"seed"`
	NextBlock uint64 `json:"next_block"`
}

// lastBlock is the number of the last block of the ID space.
const lastBlock = ids.Space/idseq.BlockSize - 1

// TestCounter: a source claims the counter's next block and numbers its IDs from the block's
// start under the counter's seed (a fresh counter gets a random seed), claims the following
// block when one runs out, and stops at the end of the ID space; a counter it cannot read
// stops it, and a failed claim changes nothing.
func TestCounter(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Client(t, endpoint)
	tests := []struct {
		name    string
		initial string // the counter's value before; "" for none
		calls   int
		// wantN is the number of the last ID handed out (under the seed the counter holds after).
		wantN uint64
		// wantErr is the text of the error of the last call, if it fails.
		wantErr string
		// want is the counter afterwards; a zero Seed means a random one, chosen by the source.
		want counter
	}{
		{name: "fresh counter", calls: 1, wantN: 0, want: counter{NextBlock: 1}},
		{name: "whole first block", calls: idseq.BlockSize, wantN: idseq.BlockSize - 1, want: counter{NextBlock: 1}},
		{name: "into the second block", calls: idseq.BlockSize + 1, wantN: idseq.BlockSize, want: counter{NextBlock: 2}},
		{name: "resumes after the blocks claimed", initial: `{"seed":7,"next_block":5}`, calls: 3, wantN: 5*idseq.BlockSize + 2, want: counter{Seed: 7, NextBlock: 6}},
		{name: "seed zero is kept", initial: `{"seed":0,"next_block":1}`, calls: 1, wantN: idseq.BlockSize, want: counter{Seed: 0, NextBlock: 2}},
		{name: "last block to its end", initial: `{"seed":7,"next_block":` + itoa(lastBlock) + `}`, calls: idseq.BlockSize, wantN: ids.Space - 1, want: counter{Seed: 7, NextBlock: lastBlock + 1}},
		{name: "past the last block", initial: `{"seed":7,"next_block":` + itoa(lastBlock) + `}`, calls: idseq.BlockSize + 1, wantErr: "has been handed out", want: counter{Seed: 7, NextBlock: lastBlock + 1}},
		{name: "space used up", initial: `{"seed":7,"next_block":` + itoa(lastBlock+1) + `}`, calls: 1, wantErr: "has been handed out", want: counter{Seed: 7, NextBlock: lastBlock + 1}},
		{name: "malformed counter", initial: `not json`, calls: 1, wantErr: "holds"},
		{name: "counter of the wrong type", initial: `{"seed":"7","next_block":1}`, calls: 1, wantErr: "holds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			key := "/test/idseq/counter/" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.initial != "" {
				if _, err := cli.Put(ctx, key, tc.initial); err != nil {
					t.Fatal(err)
				}
			}
			s := idseq.New(cli, key, ids.Vpc)
			var last string
			var err error
			for i := range tc.calls {
				if last, err = s.Next(ctx); err != nil && i < tc.calls-1 {
					t.Fatalf("call %d of %d: %v", i+1, tc.calls, err)
				}
			}
			resp, gerr := cli.Get(ctx, key)
			if gerr != nil || len(resp.Kvs) != 1 {
				t.Fatalf("read counter: %v, %v", resp, gerr)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("last call: %q, %v; want an error with %q", last, err, tc.wantErr)
				}
				if tc.want == (counter{}) { // unreadable: left as it was
					if got := string(resp.Kvs[0].Value); got != tc.initial {
						t.Errorf("counter %s, want it unchanged: %s", got, tc.initial)
					}
					return
				}
			} else if err != nil {
				t.Fatalf("last call: %v", err)
			}
			var got counter
			if err := json.Unmarshal(resp.Kvs[0].Value, &got); err != nil {
				t.Fatalf("counter %s: %v", resp.Kvs[0].Value, err)
			}
			want := tc.want
			if tc.initial == "" {
				want.Seed = got.Seed // chosen at random by the first claim
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counter (-want +got):\n%s", diff)
			}
			if tc.wantErr == "" {
				if wantID := ids.FromNumber(ids.Vpc, tc.wantN, got.Seed); last != wantID {
					t.Errorf("last ID %s, want %s (number %d under seed %d)", last, wantID, tc.wantN, got.Seed)
				}
			}
		})
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestSourcesShareACounter: two sources on one counter take turns claiming blocks, so the
// second one's IDs start at the second block; a source that failed to reach etcd (its context
// ended) claims nothing and works again with a live context.
func TestSourcesShareACounter(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Client(t, endpoint)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const key = "/test/idseq/shared"
	a, b := idseq.New(cli, key, ids.Subnet), idseq.New(cli, key, ids.Subnet)

	ended, end := context.WithCancel(ctx)
	end()
	if id, err := a.Next(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with an ended context = %q, %v; want context.Canceled", id, err)
	}
	if resp, err := cli.Get(ctx, key); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("counter after a failed claim: %v, %v; want none", resp, err)
	}

	next := func(s *idseq.Source) string {
		t.Helper()
		id, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	got := []string{next(a), next(b), next(a), next(b)}
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read counter: %v, %v", resp, err)
	}
	var c counter
	if err := json.Unmarshal(resp.Kvs[0].Value, &c); err != nil {
		t.Fatal(err)
	}
	want := []string{
		ids.FromNumber(ids.Subnet, 0, c.Seed),
		ids.FromNumber(ids.Subnet, idseq.BlockSize, c.Seed),
		ids.FromNumber(ids.Subnet, 1, c.Seed),
		ids.FromNumber(ids.Subnet, idseq.BlockSize+1, c.Seed),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IDs of a, b, a, b (-want +got):\n%s", diff)
	}
	if c.NextBlock != 2 {
		t.Errorf("counter %s, want 2 blocks claimed", resp.Kvs[0].Value)
	}
}
