package store

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// indexWorld is a HAVIP cache as kvcache keeps it (items, fed to the index's hook) and the EIP
// bindings (fed to the address index's hook).
type indexWorld struct {
	ix       *index
	ax       *addressIndex
	items    map[string]*entry
	bindings map[string]*kvcache.Item[records.AddressBinding] // by HAVIP ID
	rev      int64
}

var (
	genAccount = rapid.SampledFrom([]string{"acct-a", "acct-b"})
	pools      = map[string][]string{
		"havip-id":                        {"havip-0", "havip-1", "havip-7", "havip-x"},
		"havip-name":                      {"n0", "n1", "n2", ""},
		"vpc-id":                          {"vpc-0", "vpc-1"},
		"subnet-id":                       {"subnet-0", "subnet-1", "subnet-2"},
		"vip":                             {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.01", "2001:db8::1", "::ffff:10.0.0.1", "invalid IP", ""},
		"check-associate":                 {"true", "false", "TRUE"},
		"address-ip":                      {"198.51.100.1", "198.51.100.2", "2001:db8::1", "198.51.100.01", ""},
		"havip-association.instance-id":   {"ins-0", "ins-1", "ins-2", "eni-0"},
		"havip-association.instance-type": {"CVM", "ENI", "cvm"},
		"bogus":                           {"x"},
	}
	vipPool = []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:10.0.0.1"), {}}
)

func (w *indexWorld) genHaVip(t *rapid.T, key string) records.HaVip {
	h := records.HaVip{
		ID: havipcache.IDOf(key), Account: genAccount.Draw(t, "account"), Name: rapid.SampledFrom(pools["havip-name"]).Draw(t, "name"),
		VpcID: rapid.SampledFrom(pools["vpc-id"]).Draw(t, "vpc"), SubnetID: rapid.SampledFrom(pools["subnet-id"]).Draw(t, "subnet"),
		VIP: rapid.SampledFrom(vipPool).Draw(t, "vip"), CheckAssociate: rapid.Bool().Draw(t, "check"),
	}
	for range rapid.IntRange(0, 3).Draw(t, "assoc") {
		h.Associations = append(h.Associations, records.Association{
			InstanceID: rapid.SampledFrom(pools["havip-association.instance-id"]).Draw(t, "instance"),
			Type:       rapid.SampledFrom([]string{"CVM", "ENI"}).Draw(t, "type"),
		})
	}
	if rapid.Bool().Draw(t, "token") {
		h.ClientToken = "token-" + key
	}
	switch rapid.IntRange(0, 3).Draw(t, "created") {
	case 0:
	case 1:
		h.Created = time.Unix(0, rapid.Int64().Draw(t, "ns")).In(time.FixedZone("", 5*3600))
	default:
		h.Created = time.Unix(rapid.Int64Range(0, 1<<33).Draw(t, "s"), rapid.Int64Range(0, 1e9-1).Draw(t, "ns")).UTC()
	}
	return h
}

// put stores h at key, as kvcache does with a watch event: a new item, the hook told.
func (w *indexWorld) put(t *rapid.T, key string, h records.HaVip) {
	val := records.EncodeHaVip(h)
	r, err := havipcache.Decode(key, []byte(val))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := records.DecodeHaVip([]byte(val))
	if got := r.HaVip(key); !reflect.DeepEqual(got, want) {
		t.Fatalf("record of %s reads back as %+v", val, got)
	}
	w.rev++
	cur := &entry{Key: key, Value: r, CreateRevision: w.rev, ModRevision: w.rev}
	if rapid.Bool().Draw(t, "sameRevision") && w.rev > 1 {
		cur.CreateRevision, cur.ModRevision = w.rev-1, w.rev-1 // created in one transaction with another
	}
	prev := w.items[key]
	if prev != nil {
		cur.CreateRevision = prev.CreateRevision
	}
	w.items[key] = cur
	w.ix.hook(prev, cur, cur.ModRevision)
}

func (w *indexWorld) bind(id, ip string) {
	prev := w.bindings[id]
	var cur *kvcache.Item[records.AddressBinding]
	if ip != "-" {
		cur = &kvcache.Item[records.AddressBinding]{Key: records.HaVipAddressKey(id), Value: records.AddressBinding{AddressID: "eip-" + id, AddressIP: ip}}
		w.bindings[id] = cur
	} else {
		delete(w.bindings, id)
		if prev == nil {
			return
		}
	}
	w.ax.hook(prev, cur, 0)
}

// want is the page and total the old scan gave: every HAVIP of the account, in creation order,
// each filter's field formatted and compared with its values.
func (w *indexWorld) want(account string, filters []Filter, offset, limit int) ([]string, int) {
	var all []*entry
	for _, e := range w.items {
		if e.Value.Account() == account {
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), strings.Compare(a.Key, b.Key))
	})
	var page []string
	total := 0
	for _, e := range all {
		h := e.Value.HaVip(e.Key)
		pass := true
		for _, f := range filters {
			var vals []string
			switch f.Key {
			case "havip-id":
				vals = []string{h.ID}
			case "havip-name":
				vals = []string{h.Name}
			case "vpc-id":
				vals = []string{h.VpcID}
			case "subnet-id":
				vals = []string{h.SubnetID}
			case "vip":
				vals = []string{h.VIP.String()}
			case "check-associate":
				vals = []string{strconv.FormatBool(h.CheckAssociate)}
			case "address-ip":
				ip := ""
				if b := w.bindings[h.ID]; b != nil {
					ip = b.Value.AddressIP
				}
				vals = []string{ip}
			case "havip-association.instance-id":
				for _, a := range h.Associations {
					vals = append(vals, a.InstanceID)
				}
			case "havip-association.instance-type":
				for _, a := range h.Associations {
					vals = append(vals, a.Type)
				}
			}
			if !slices.ContainsFunc(vals, func(v string) bool { return slices.Contains(f.Values, v) }) {
				pass = false
			}
		}
		if pass {
			if total >= offset && len(page) < limit {
				page = append(page, e.Key)
			}
			total++
		}
	}
	return page, total
}

// got is what the index answers, as Select asks it.
func (w *indexWorld) got(account string, filters []Filter, offset, limit int) ([]string, int) {
	a := w.ix.accounts[account]
	if a == nil {
		return nil, 0
	}
	srcs := make([]source, len(filters))
	for i, f := range filters {
		var bound map[string]bool
		if f.Key == "address-ip" {
			bound = map[string]bool{}
			for _, v := range f.Values {
				for _, id := range w.ax.lookup(v) {
					bound[id] = true
				}
			}
		}
		srcs[i] = sourceOf(a, account, w.items, f, bound, func(id string) string {
			if b := w.bindings[id]; b != nil {
				return b.Value.AddressIP
			}
			return ""
		})
	}
	es, total := a.selectPage(srcs, offset, limit)
	var page []string
	for _, e := range es {
		page = append(page, e.Key)
	}
	return page, total
}

// TestIndexModel: after any sequence of creates, updates, deletes, binds, unbinds and first
// loads (an index built at once from what the cache holds), every filtered, paged selection from
// the index is the one the old scan of every HAVIP gave.
func TestIndexModel(t *testing.T) {
	for _, width := range []int{4, 64} {
		t.Run(fmt.Sprint("width ", width), func(t *testing.T) {
			narrow(t, width)
			rapid.Check(t, testIndexModel)
		})
	}
}

func testIndexModel(t *rapid.T) {
	w := &indexWorld{ix: newIndex(), ax: newAddressIndex(), items: map[string]*entry{}, bindings: map[string]*kvcache.Item[records.AddressBinding]{}}
	genKey := rapid.Custom(func(t *rapid.T) string {
		return records.HaVipKey(fmt.Sprint("havip-", rapid.IntRange(0, 40).Draw(t, "n")))
	})
	keys := append([]string{"bogus"}, FilterKeys...)
	t.Repeat(map[string]func(*rapid.T){
		"put": func(t *rapid.T) {
			key := genKey.Draw(t, "key")
			w.put(t, key, w.genHaVip(t, key))
		},
		"putMany": func(t *rapid.T) { // one account's, in one vpc, as a load brings them
			h := w.genHaVip(t, "")
			for i := range rapid.IntRange(1, 20).Draw(t, "n") {
				key := records.HaVipKey(fmt.Sprint("havip-", 100+w.rev+int64(i)))
				h.ID, h.VIP = havipcache.IDOf(key), rapid.SampledFrom(vipPool).Draw(t, "vip")
				w.put(t, key, h)
			}
		},
		"delete": func(t *rapid.T) {
			key := genKey.Draw(t, "key")
			if prev := w.items[key]; prev != nil {
				delete(w.items, key)
				w.ix.hook(prev, nil, 0)
			}
		},
		"load": func(t *rapid.T) { // a new index from a first load of what the cache holds
			all := slices.Collect(maps.Values(w.items))
			slices.SortFunc(all, func(a, b *entry) int {
				return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), strings.Compare(a.Key, b.Key))
			})
			w.ix = newIndex()
			w.ix.load(all)
		},
		"bind": func(t *rapid.T) {
			w.bind(havipcache.IDOf(genKey.Draw(t, "key")), rapid.SampledFrom(append([]string{"-"}, pools["address-ip"]...)).Draw(t, "ip"))
		},
		"select": func(t *rapid.T) {
			account := genAccount.Draw(t, "account")
			var filters []Filter
			for range rapid.IntRange(0, 3).Draw(t, "filters") {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				f := Filter{Key: k}
				for range rapid.IntRange(1, 3).Draw(t, "values") {
					f.Values = append(f.Values, rapid.SampledFrom(pools[k]).Draw(t, "value"))
				}
				filters = append(filters, f)
			}
			offset := rapid.IntRange(0, len(w.items)+2).Draw(t, "offset")
			limit := rapid.IntRange(1, 6).Draw(t, "limit")
			wantPage, wantTotal := w.want(account, filters, offset, limit)
			gotPage, gotTotal := w.got(account, filters, offset, limit)
			if gotTotal != wantTotal || !slices.Equal(gotPage, wantPage) {
				t.Fatalf("%s %+v [%d:+%d]: got %d %v, want %d %v", account, filters, offset, limit, gotTotal, gotPage, wantTotal, wantPage)
			}
		},
		"selectAll": func(t *rapid.T) { // filters every HAVIP passes, any page
			account := genAccount.Draw(t, "account")
			offset := rapid.IntRange(0, len(w.items)+2).Draw(t, "offset")
			filters := []Filter{{Key: "vpc-id", Values: pools["vpc-id"]}, {Key: "check-associate", Values: []string{"true", "false"}}}
			wantPage, wantTotal := w.want(account, filters, offset, 5)
			gotPage, gotTotal := w.got(account, filters, offset, 5)
			if gotTotal != wantTotal || !slices.Equal(gotPage, wantPage) {
				t.Fatalf("%s [%d:+5]: got %d %v, want %d %v", account, offset, gotTotal, gotPage, wantTotal, wantPage)
			}
		},
		"": func(t *rapid.T) {
			n := 0
			for _, a := range w.ix.accounts {
				n += a.all.Len()
			}
			if n != len(w.items) {
				t.Fatalf("the index holds %d HAVIPs, the cache %d", n, len(w.items))
			}
		},
	})
}
