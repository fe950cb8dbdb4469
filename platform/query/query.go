// Package query applies the Tencent-style Describe parameters: IDs or filters, offset and limit.
package query

import (
	"slices"

	"github.com/openhavip/havip/platform/apierr"
)

// Filter is what every API package's Filter message looks like.
type Filter interface {
	GetName() string
	GetValues() []string
}

// Fields maps each filter key a Describe accepts to the value of that field of an item.
type Fields[T any] map[string]func(T) string

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Spec is one Describe request: either IDs or filters, and a page.
type Spec[T any, F Filter] struct {
	IDs     []string
	Filters []F
	Offset  uint32
	Limit   uint32
}

// Check validates the request against the accepted filter keys.
func (s Spec[T, F]) Check(fields Fields[T]) error {
	if len(s.IDs) > 0 && len(s.Filters) > 0 {
		return apierr.New(apierr.ReasonCoexist, "IDs and filters cannot be given together")
	}
	if s.Limit > MaxLimit {
		return apierr.New(apierr.ReasonLimitExceeded, "limit %d is over %d", s.Limit, MaxLimit)
	}
	if len(s.IDs) > MaxLimit {
		return apierr.New(apierr.ReasonLimitExceeded, "at most %d IDs", MaxLimit)
	}
	for _, f := range s.Filters {
		if _, ok := fields[f.GetName()]; !ok {
			return apierr.New(apierr.ReasonFilterInvalidKey, "unknown filter key %q", f.GetName())
		}
		if len(f.GetValues()) == 0 {
			return apierr.New(apierr.ReasonInvalidParameterValue, "filter %q has no values", f.GetName())
		}
	}
	return nil
}

// Match reports whether item passes every filter (each filter: any of its values).
func (s Spec[T, F]) Match(fields Fields[T], item T) bool {
	for _, f := range s.Filters {
		if !slices.Contains(f.GetValues(), fields[f.GetName()](item)) {
			return false
		}
	}
	return true
}

// Page cuts the page out of items already in order, and returns it with the total count.
func (s Spec[T, F]) Page(items []T) ([]T, uint32) {
	limit := s.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	total := uint32(len(items))
	if s.Offset >= total {
		return nil, total
	}
	end := s.Offset + min(limit, total-s.Offset) // not min(total, Offset+limit): that can wrap
	return items[s.Offset:end], total
}

// Select returns the items (already in order) that the IDs or the filters pick. Every ID asked
// for must exist, or the call fails with NotFound naming it.
func (s Spec[T, F]) Select(fields Fields[T], id func(T) string, items []T) ([]T, error) {
	if len(s.IDs) > 0 {
		want := make(map[string]bool, len(s.IDs))
		for _, v := range s.IDs {
			want[v] = true
		}
		var out []T
		for _, it := range items {
			if want[id(it)] {
				out = append(out, it)
				delete(want, id(it))
			}
		}
		for _, v := range s.IDs {
			if want[v] {
				return nil, apierr.NotFound("%s does not exist", v)
			}
		}
		return out, nil
	}
	var out []T
	for _, it := range items {
		if s.Match(fields, it) {
			out = append(out, it)
		}
	}
	return out, nil
}
