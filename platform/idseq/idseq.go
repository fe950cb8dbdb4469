// Package idseq hands out resource IDs unique across replicas without a check per ID: blocks of numbers from a counter in etcd.
package idseq

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/ids"
)

// BlockSize is how many numbers a replica claims at once; numbers of a block a replica does not
// use before it stops are never handed out.
const BlockSize = 1024

// Source hands out IDs of one kind. Each replica claims blocks of numbers by a compare-and-swap
// of the kind's counter key, so no two replicas (nor two runs of one) get the same number, and
// ids.FromNumber turns distinct numbers into distinct IDs under the counter's seed (random,
// chosen by the first claim, so every installation has a sequence of its own).
type Source struct {
	cli    *clientv3.Client
	key    string
	prefix string

	mu        sync.Mutex
	seed      uint64
	next, end uint64
}

// counter is the value of a counter key.
type counter struct {
	Seed      uint64 `json:"seed"`
	NextBlock uint64 `json:"next_block"`
}

// New returns a source of IDs with the given prefix whose counter is the etcd key key.
func New(cli *clientv3.Client, key, prefix string) *Source {
	return &Source{cli: cli, key: key, prefix: prefix}
}

// Next returns a fresh ID; it reaches etcd once per BlockSize IDs.
func (s *Source) Next(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == s.end {
		if err := s.claimLocked(ctx); err != nil {
			return "", err
		}
	}
	n := s.next
	s.next++
	return ids.FromNumber(s.prefix, n, s.seed), nil
}

// claimLocked takes the counter's next block.
func (s *Source) claimLocked(ctx context.Context) error {
	for {
		resp, err := s.cli.Get(ctx, s.key)
		if err != nil {
			return fmt.Errorf("read ID counter: %w", err)
		}
		var c counter
		var rev int64
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
			if err := json.Unmarshal(resp.Kvs[0].Value, &c); err != nil {
				return fmt.Errorf("ID counter %s holds %q: %w", s.key, resp.Kvs[0].Value, err)
			}
		} else {
			var b [8]byte
			_, _ = rand.Read(b[:])
			c.Seed = binary.LittleEndian.Uint64(b[:])
		}
		block := c.NextBlock
		if (block+1)*BlockSize > ids.Space {
			return fmt.Errorf("ID counter %s: every %s ID has been handed out", s.key, s.prefix)
		}
		c.NextBlock++
		val, _ := json.Marshal(c)
		tx, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(s.key), "=", rev)).
			Then(clientv3.OpPut(s.key, string(val))).Commit()
		if err != nil {
			return fmt.Errorf("claim ID block: %w", err)
		}
		if tx.Succeeded {
			s.seed, s.next, s.end = c.Seed, block*BlockSize, (block+1)*BlockSize
			return nil
		}
	}
}
