package query_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/query"
)

// filter is a Filter as the API packages' generated messages are.
type filter struct {
	Name   string
	Values []string
}

func (f filter) GetName() string     { return f.Name }
func (f filter) GetValues() []string { return f.Values }

type vpc struct{ ID, Name, Zone string }

var fields = query.Fields[vpc]{
	"vpc-id":   func(v vpc) string { return v.ID },
	"vpc-name": func(v vpc) string { return v.Name },
	"zone":     func(v vpc) string { return v.Zone },
}

var vpcs = []vpc{
	{ID: "vpc-00000001", Name: "web", Zone: "zone-a"},
	{ID: "vpc-00000002", Name: "db", Zone: "zone-a"},
	{ID: "vpc-00000003", Name: "web", Zone: "zone-b"},
	{ID: "vpc-00000004", Name: "Web", Zone: "zone-c"},
}

func idOf(v vpc) string { return v.ID }

func idList(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("vpc-%08d", i)
	}
	return out
}

type spec = query.Spec[vpc, filter]

// TestCheck: IDs and filters exclude each other, the limit and the number of IDs are bounded,
// and every filter must have a known key and at least one value.
func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		spec       spec
		wantReason string // "" for accepted
	}{
		{name: "nothing asked", spec: spec{}},
		{name: "IDs", spec: spec{IDs: []string{"vpc-00000001"}}},
		{name: "filters", spec: spec{Filters: []filter{{Name: "zone", Values: []string{"zone-a"}}, {Name: "vpc-name", Values: []string{"web", "db"}}}}},
		{name: "IDs and filters", spec: spec{IDs: []string{"vpc-00000001"}, Filters: []filter{{Name: "zone", Values: []string{"zone-a"}}}}, wantReason: apierr.ReasonCoexist},
		{name: "limit at the maximum", spec: spec{Limit: query.MaxLimit}},
		{name: "limit over the maximum", spec: spec{Limit: query.MaxLimit + 1}, wantReason: apierr.ReasonLimitExceeded},
		{name: "largest limit", spec: spec{Limit: math.MaxUint32}, wantReason: apierr.ReasonLimitExceeded},
		{name: "offset is not bounded", spec: spec{Offset: math.MaxUint32}},
		{name: "IDs at the maximum", spec: spec{IDs: idList(query.MaxLimit)}},
		{name: "IDs over the maximum", spec: spec{IDs: idList(query.MaxLimit + 1)}, wantReason: apierr.ReasonLimitExceeded},
		{name: "unknown filter key", spec: spec{Filters: []filter{{Name: "subnet-id", Values: []string{"x"}}}}, wantReason: apierr.ReasonFilterInvalidKey},
		{name: "keys are case-sensitive", spec: spec{Filters: []filter{{Name: "Zone", Values: []string{"zone-a"}}}}, wantReason: apierr.ReasonFilterInvalidKey},
		{name: "empty filter key", spec: spec{Filters: []filter{{Name: "", Values: []string{"x"}}}}, wantReason: apierr.ReasonFilterInvalidKey},
		{name: "unknown key after a good one", spec: spec{Filters: []filter{{Name: "zone", Values: []string{"zone-a"}}, {Name: "nope", Values: []string{"x"}}}}, wantReason: apierr.ReasonFilterInvalidKey},
		{name: "filter without values", spec: spec{Filters: []filter{{Name: "zone"}}}, wantReason: apierr.ReasonInvalidParameterValue},
		{name: "filter with an empty value", spec: spec{Filters: []filter{{Name: "zone", Values: []string{""}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.spec.Check(fields)
			if got := apierr.Reason(err); got != tc.wantReason || (err == nil) != (tc.wantReason == "") {
				t.Errorf("Check: %v (reason %q), want reason %q", err, got, tc.wantReason)
			}
		})
	}
}

// TestSelect: IDs pick those items, in the items' order, once each, and every ID must exist;
// filters keep the items that match every filter (a filter matches any of its values, exactly).
func TestSelect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		spec    spec
		want    []string // IDs of the items selected
		wantErr string   // an ID the NotFound error names
	}{
		{name: "nothing asked selects all", spec: spec{}, want: []string{"vpc-00000001", "vpc-00000002", "vpc-00000003", "vpc-00000004"}},
		{name: "IDs keep the items' order", spec: spec{IDs: []string{"vpc-00000003", "vpc-00000001"}}, want: []string{"vpc-00000001", "vpc-00000003"}},
		{name: "repeated ID selects once", spec: spec{IDs: []string{"vpc-00000002", "vpc-00000002"}}, want: []string{"vpc-00000002"}},
		{name: "unknown ID", spec: spec{IDs: []string{"vpc-00000001", "vpc-0000000f"}}, wantErr: "vpc-0000000f"},
		{name: "unknown ID repeated", spec: spec{IDs: []string{"vpc-0000000f", "vpc-0000000f"}}, wantErr: "vpc-0000000f"},
		{name: "IDs win over filters", spec: spec{IDs: []string{"vpc-00000002"}, Filters: []filter{{Name: "vpc-name", Values: []string{"web"}}}}, want: []string{"vpc-00000002"}},
		{name: "one value", spec: spec{Filters: []filter{{Name: "vpc-name", Values: []string{"web"}}}}, want: []string{"vpc-00000001", "vpc-00000003"}},
		{name: "values are alternatives", spec: spec{Filters: []filter{{Name: "zone", Values: []string{"zone-b", "zone-c"}}}}, want: []string{"vpc-00000003", "vpc-00000004"}},
		{name: "filters all apply", spec: spec{Filters: []filter{{Name: "vpc-name", Values: []string{"web"}}, {Name: "zone", Values: []string{"zone-a"}}}}, want: []string{"vpc-00000001"}},
		{name: "one key twice intersects", spec: spec{Filters: []filter{{Name: "zone", Values: []string{"zone-a", "zone-b"}}, {Name: "zone", Values: []string{"zone-b", "zone-c"}}}}, want: []string{"vpc-00000003"}},
		{name: "values are case-sensitive", spec: spec{Filters: []filter{{Name: "vpc-name", Values: []string{"WEB"}}}}},
		{name: "no prefix match", spec: spec{Filters: []filter{{Name: "vpc-id", Values: []string{"vpc-0000000"}}}}},
		{name: "nothing matches", spec: spec{Filters: []filter{{Name: "zone", Values: []string{"zone-z"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.spec.Select(fields, idOf, vpcs)
			if tc.wantErr != "" {
				if apierr.Reason(err) != apierr.ReasonResourceNotFound || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Select: %v, want ResourceNotFound naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, v := range got {
				gotIDs = append(gotIDs, v.ID)
			}
			if diff := cmp.Diff(tc.want, gotIDs); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPage: the page starts at the offset and holds at most the limit (20 when none is given);
// the total is every item however the page is cut, and an offset at or past the end gives an
// empty page.
func TestPage(t *testing.T) {
	t.Parallel()
	items := idList(45)
	tests := []struct {
		name          string
		items         []string
		offset, limit uint32
		wantFrom      int // the page is items[wantFrom:wantTo]
		wantTo        int
	}{
		{name: "default limit", items: items, wantFrom: 0, wantTo: query.DefaultLimit},
		{name: "limit", items: items, limit: 7, wantFrom: 0, wantTo: 7},
		{name: "offset and limit", items: items, offset: 10, limit: 5, wantFrom: 10, wantTo: 15},
		{name: "last page is short", items: items, offset: 40, limit: 20, wantFrom: 40, wantTo: 45},
		{name: "page ends at the end", items: items, offset: 25, limit: 20, wantFrom: 25, wantTo: 45},
		{name: "last item", items: items, offset: 44, limit: 1, wantFrom: 44, wantTo: 45},
		{name: "maximum limit takes all", items: items, limit: query.MaxLimit, wantFrom: 0, wantTo: 45},
		{name: "offset at the end", items: items, offset: 45, wantFrom: 45, wantTo: 45},
		{name: "offset past the end", items: items, offset: 46, limit: 10, wantFrom: 45, wantTo: 45},
		{name: "largest offset", items: items, offset: math.MaxUint32, limit: query.MaxLimit, wantFrom: 45, wantTo: 45},
		{name: "largest limit", items: items, offset: 3, limit: math.MaxUint32, wantFrom: 3, wantTo: 45},
		{name: "no items", items: nil, limit: 10, wantFrom: 0, wantTo: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := query.Spec[string, filter]{Offset: tc.offset, Limit: tc.limit}
			page, total := s.Page(tc.items)
			if total != uint32(len(tc.items)) {
				t.Errorf("total %d, want %d", total, len(tc.items))
			}
			if diff := cmp.Diff(tc.items[tc.wantFrom:tc.wantTo], page, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPaging: walking the pages of a list one limit at a time visits every item once, in order,
// for page sizes that divide the list and sizes that do not.
func TestPaging(t *testing.T) {
	t.Parallel()
	items := idList(45)
	for _, limit := range []uint32{1, 7, 9, 20, 44, 45, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			t.Parallel()
			var got []string
			pages := 0
			for offset := uint32(0); ; offset += limit {
				page, total := query.Spec[string, filter]{Offset: offset, Limit: limit}.Page(items)
				if total != 45 {
					t.Fatalf("total %d at offset %d", total, offset)
				}
				if len(page) == 0 {
					break
				}
				pages++
				got = append(got, page...)
			}
			if diff := cmp.Diff(items, got); diff != "" {
				t.Errorf("items over all pages (-want +got):\n%s", diff)
			}
			if want := (45 + int(limit) - 1) / int(limit); pages != want {
				t.Errorf("%d pages, want %d", pages, want)
			}
		})
	}
}
