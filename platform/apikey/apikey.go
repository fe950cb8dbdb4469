// Package apikey maps API keys to accounts, keeping only the keys' SHA-256 hashes.
package apikey

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Keys maps the hashes of API keys to accounts.
type Keys struct {
	byHash map[[sha256.Size]byte]string
}

// Parse reads a keys file: one "<account> sha256:<hex of the key's SHA-256>" per line; blank
// lines and lines starting with # are skipped.
func Parse(r io.Reader) (*Keys, error) {
	k := &Keys{byHash: map[[sha256.Size]byte]string{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || !strings.HasPrefix(fields[1], "sha256:") {
			return nil, fmt.Errorf("line %d: want \"<account> sha256:<hex>\"", n)
		}
		sum, err := hex.DecodeString(strings.TrimPrefix(fields[1], "sha256:"))
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("line %d: the hash is not 64 hex digits", n)
		}
		k.byHash[[sha256.Size]byte(sum)] = fields[0]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return k, nil
}

// Load reads a keys file (see Parse).
func Load(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open keys file: %w", err)
	}
	defer func() { _ = f.Close() }()
	return Parse(f)
}

// Account returns the account of key. Only the key's hash is looked up, so the time taken
// tells nothing about the stored keys.
func (k *Keys) Account(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	a, ok := k.byHash[sha256.Sum256([]byte(key))]
	return a, ok
}

// Len is how many keys there are.
func (k *Keys) Len() int { return len(k.byHash) }

// New returns a fresh random key: "havip_" and 32 base32 characters (160 bits).
func New() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "havip_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// Line is the keys file line giving key to account.
func Line(account, key string) string {
	sum := sha256.Sum256([]byte(key))
	return account + " sha256:" + hex.EncodeToString(sum[:]) + "\n"
}

// Bearer returns the key of an "Authorization: Bearer <key>" header (or metadata) value.
func Bearer(h string) (string, bool) {
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}
