package gateway

import (
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/gateway/openapi"
)

// TestOpenAPIMatchesRules: the embedded description has exactly the routes of http_rules.yaml
// (`make check-generate` keeps it in step with the protos; this keeps it in step with the rules).
func TestOpenAPIMatchesRules(t *testing.T) {
	raw, err := os.ReadFile("http_rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`^\s*(?:- )?(get|post|patch|delete|put): (\S+)`)
	var fromRules []string
	for _, line := range strings.Split(string(raw), "\n") {
		if m := rule.FindStringSubmatch(line); m != nil {
			fromRules = append(fromRules, m[1]+" "+m[2])
		}
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	var fromDoc []string
	for p, methods := range doc.Paths {
		for m := range methods {
			fromDoc = append(fromDoc, m+" "+p)
		}
	}
	sort.Strings(fromRules)
	sort.Strings(fromDoc)
	if strings.Join(fromRules, "\n") != strings.Join(fromDoc, "\n") || len(fromRules) < 32 {
		t.Errorf("rules:\n%s\n\nOpenAPI:\n%s", strings.Join(fromRules, "\n"), strings.Join(fromDoc, "\n"))
	}
}

// TestFilterParser: filter.<key> parameters become filters (sorted by key, values in order);
// other parameters are set as grpc-gateway sets them; unknown ones are refused.
func TestFilterParser(t *testing.T) {
	var req havipv1.DescribeHaVipsRequest
	q := url.Values{"filter.vpc-id": {"vpc-1"}, "filter.havip-name": {"a", "b"}, "limit": {"5"}, "havip_ids": {"havip-1"}}
	if err := (filterParser{}).Parse(&req, q, utilities.NewDoubleArray(nil)); err != nil {
		t.Fatal(err)
	}
	f := req.GetFilters()
	if len(f) != 2 || f[0].GetName() != "havip-name" || strings.Join(f[0].GetValues(), ",") != "a,b" || f[1].GetName() != "vpc-id" || req.GetLimit() != 5 || req.GetHavipIds()[0] != "havip-1" {
		t.Errorf("parsed %v", &req)
	}
	for _, bad := range []url.Values{{"colour": {"red"}}, {"limit": {"x"}}, {"filters.name": {"x"}, "bogus.x": {"1"}}} {
		if err := (filterParser{}).Parse(&havipv1.DescribeHaVipsRequest{}, bad, utilities.NewDoubleArray(nil)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if err := (filterParser{}).Parse(&havipv1.DeleteHaVipRequest{}, url.Values{"filter.x": {"1"}}, utilities.NewDoubleArray(nil)); err == nil {
		t.Error("filters accepted by a request without filters")
	}
}
