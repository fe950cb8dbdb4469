package query_test

import (
	"fmt"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/query"
)

// nameFilter is a Filter, as an API package's generated Filter message is.
type nameFilter struct {
	name   string
	values []string
}

func (f nameFilter) GetName() string     { return f.name }
func (f nameFilter) GetValues() []string { return f.values }

type subnet struct{ ID, Zone string }

// A Describe handler: check the request, select the items it picks, cut out the page.
func Example() {
	fields := query.Fields[subnet]{
		"subnet-id": func(s subnet) string { return s.ID },
		"zone":      func(s subnet) string { return s.Zone },
	}
	all := []subnet{ // in the order the API lists them
		{ID: "subnet-aaaaaaaa", Zone: "zone-1"},
		{ID: "subnet-bbbbbbbb", Zone: "zone-2"},
		{ID: "subnet-cccccccc", Zone: "zone-1"},
		{ID: "subnet-dddddddd", Zone: "zone-1"},
	}
	describe := func(spec query.Spec[subnet, nameFilter]) {
		if err := spec.Check(fields); err != nil {
			fmt.Println("refused:", apierr.Reason(err))
			return
		}
		sel, err := spec.Select(fields, func(s subnet) string { return s.ID }, all)
		if err != nil {
			fmt.Println("refused:", apierr.Reason(err))
			return
		}
		page, total := spec.Page(sel)
		fmt.Println(total, page)
	}

	describe(query.Spec[subnet, nameFilter]{Filters: []nameFilter{{name: "zone", values: []string{"zone-1"}}}, Offset: 1, Limit: 1})
	describe(query.Spec[subnet, nameFilter]{IDs: []string{"subnet-dddddddd", "subnet-bbbbbbbb"}})
	describe(query.Spec[subnet, nameFilter]{IDs: []string{"subnet-eeeeeeee"}})
	describe(query.Spec[subnet, nameFilter]{Filters: []nameFilter{{name: "vpc-id", values: []string{"vpc-1"}}}})
	describe(query.Spec[subnet, nameFilter]{Limit: 1000})
	// Output:
	// 3 [{subnet-cccccccc zone-1}]
	// 2 [{subnet-bbbbbbbb zone-2} {subnet-dddddddd zone-1}]
	// refused: ResourceNotFound
	// refused: InvalidParameter.FilterInvalidKey
	// refused: InvalidParameterValue.LimitExceeded
}
