package suite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	consolefs "github.com/openhavip/havip/gateway/console"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
)

// artifacts is where the console test saves a screenshot of each step (gitignored).
const artifacts = "artifacts/console"

// browser is a headless chromium tab on the console, with the test's helpers.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // http://host:port of the gateway
	shot int

	mu       sync.Mutex
	problems []string // script exceptions and console errors (CSP violations among them)
}

// startBrowser starts Debian's chromium headless at 1280×800, or skips the test without it.
func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: scripts/install-system-deps.sh installs it (Debian: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 800))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, base: base}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, log.EntryAdded)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			b.problem(fmt.Sprintf("script exception at %s:%d: %s", d.URL, d.LineNumber, text))
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			// The API's refusals are part of the test (a 400 or 401 logs "Failed to load
			// resource"); any other error — a CSP violation, a script error — is a failure.
			if e := ev.Entry; e.Level == log.EntryLevelError && e.Source != log.EntrySourceNetwork {
				b.problem(fmt.Sprintf("console %s error: %s (%s)", e.Source, e.Text, e.URL))
			}
		}
	}()
	return b
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// checkClean fails on any script exception or console error seen so far.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Error(p)
	}
	b.problems = nil
}

// do runs actions, failing the test (with a screenshot) when one fails.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// wait waits until the JavaScript expression is truthy.
func (b *browser) wait(what, expr string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		b.fail(what, err)
	}
}

// fail saves a screenshot of the page and what it says, and stops the test.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	b.screenshot("FAILED")
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// screenshot saves the whole page as artifacts/console/NN-name.png (the whole page).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.shot++
	img, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(artifacts, fmt.Sprintf("%02d-%s.png", b.shot, name)), img, 0o644); err != nil {
		b.t.Error(err)
	}
}

// js quotes a string for JavaScript.
func js(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// choose picks an option of a select, once it is there, as a user would (a change event).
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	b.wait("option "+value+" of "+sel, fmt.Sprintf(`document.querySelector(%s + ' option[value=' + JSON.stringify(%s) + ']') && !document.querySelector(%s).disabled`, js(sel), js(value), js(sel)), 5*time.Second)
	ok := eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event('change', { bubbles: true })); return e.value === %s })()`, js(sel), js(value), js(value)))
	if !ok {
		b.t.Fatalf("could not choose %s in %s", value, sel)
	}
}

// typeInto replaces the text of an input by typing.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+js(sel)+`).value = ''`), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// text is the text of the first element matching sel ("" when none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`document.querySelector(%s)?.innerText ?? ''`, js(sel)))
}

// unlabelled lists the visible controls with no accessible name: inputs and selects without a
// label, buttons without text.
const unlabelled = `[...document.querySelectorAll('input, select, textarea, button')]
	.filter((e) => e.getClientRects().length > 0 && e.type !== 'hidden')
	.filter((e) => e.tagName === 'BUTTON' ? !(e.textContent.trim() || e.getAttribute('aria-label')) : !(e.labels?.length || e.getAttribute('aria-label')))
	.map((e) => e.outerHTML.slice(0, 100))`

func (b *browser) checkLabels(where string) {
	b.t.Helper()
	if bad := eval[[]string](b, unlabelled); len(bad) > 0 {
		b.t.Errorf("%s: controls without a label: %v", where, bad)
	}
}

// checkFits fails when the page is wider than the window (the tables scroll inside their own
// box instead).
func (b *browser) checkFits(where string) {
	b.t.Helper()
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		b.t.Errorf("%s: the page is %d px wide in a %d px window", where, w[0], w[1])
	}
}

// dictionary is one of the console's dictionaries.
func dictionary(t *testing.T, lang string) map[string]string {
	t.Helper()
	raw, err := fs.ReadFile(consolefs.Static, "i18n/"+lang+".json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]string
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// agent is a host agent's client of the ARP broker, with an open session.
type agent struct {
	client  arpbrokerv1.ArpBrokerServiceClient
	id      string
	session int64
}

func newAgent(t *testing.T, s *stack, host string) *agent {
	t.Helper()
	conn, err := grpc.NewClient(s.ready.GRPCAddr, mtls.DialOption(sourceAs(t, s.ready.CertsDir, identity.ID{Kind: identity.Agent, Name: host})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	a := &agent{client: arpbrokerv1.NewArpBrokerServiceClient(conn), id: "agent-" + host}
	resp, err := a.client.OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: a.id, HostId: host, TtlSeconds: 60})
	if err != nil {
		t.Fatalf("open a session for %s: %v", host, err)
	}
	a.session = resp.GetSessionId()
	return a
}

// announce reports a gratuitous ARP of vip from an ENI, as keepalived's would be seen on its
// port, and returns the broker's answer (retried until the broker has elected its leader).
func (a *agent) announce(t *testing.T, eni, mac, vip string) *arpbrokerv1.ReportArpAnnouncementResponse {
	t.Helper()
	req := &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: a.id, SessionId: a.session, NetworkInterfaceId: eni, EthernetSourceMac: mac,
		SenderMac: mac, SenderIp: vip, TargetIp: vip, Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := a.client.ReportArpAnnouncement(context.Background(), req)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("report: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the broker's election
	}
}

// TestConsoleInBrowser drives the web console in headless chromium against the real suite,
// step by step as the product documents describe it, saving a screenshot of each step.
func TestConsoleInBrowser(t *testing.T) {
	s := startStack(t, false)
	en, zh := dictionary(t, "en"), dictionary(t, "zh")
	key := s.keyA

	// What the HAVIP needs, made over REST: a VPC, a subnet, three CVMs (two for the range, one
	// outside it), a secondary ENI attached to the first, and a free EIP.
	vpc := ok(t, s.do(t, key, "POST", "/v1/vpcs", map[string]any{"vpc_name": "prod", "cidr_block": "10.0.0.0/16"})).str("vpc", "vpc_id")
	subnet := ok(t, s.do(t, key, "POST", "/v1/subnets", map[string]any{"vpc_id": vpc, "subnet_name": "web", "cidr_block": "10.0.1.0/24"})).str("subnet", "subnet_id")
	type cvm struct{ id, eni, mac, ip string }
	mkCVM := func(name, host string) cvm {
		r := ok(t, s.do(t, key, "POST", "/v1/instances", map[string]any{"instance_name": name, "subnet_id": subnet, "host_id": host}))
		return cvm{r.str("instance", "instance_id"), r.str("primary_network_interface", "network_interface_id"), r.str("primary_network_interface", "mac_address"), r.str("instance", "private_ip_address")}
	}
	cvm1, cvm2, cvm3 := mkCVM("web-1", "host-1"), mkCVM("web-2", "host-2"), mkCVM("web-3", "host-1")
	eni := ok(t, s.do(t, key, "POST", "/v1/network-interfaces", map[string]any{"subnet_id": subnet, "network_interface_name": "extra"})).str("network_interface", "network_interface_id")
	ok(t, s.do(t, key, "POST", "/v1/network-interfaces/"+eni+":attach", map[string]any{"instance_id": cvm1.id}))
	eipResp := ok(t, s.do(t, key, "POST", "/v1/addresses", map[string]any{"address_name": "web"}))
	eipIP, eipID := eipResp.str("address_set", 0, "address_ip"), eipResp.str("address_set", 0, "address_id")
	host1, host2 := newAgent(t, s, "host-1"), newAgent(t, s, "host-2")

	b := startBrowser(t, s.local)
	start := time.Now()

	// Sign in.
	b.do("open the console", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.local+"/console/"), chromedp.WaitVisible(chromedp.CSS(`input[name=api-key]`)))
	b.checkLabels("sign-in page")
	b.typeInto(`input[name=api-key]`, key)
	b.do("sign in", chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)))
	b.wait("the HAVIP list", `document.querySelector('.list-body')?.getAttribute('aria-busy') === 'false' && document.querySelector('main h1')?.innerText === `+js(en["havips.title"]), 10*time.Second)
	if k := eval[string](b, `sessionStorage.getItem('havip-console.key')`); k != key {
		t.Errorf("the key is not kept in sessionStorage: %q", k)
	}
	if csp := eval[string](b, `document.querySelector('meta[http-equiv]')?.content ?? ''`); csp != "" {
		t.Errorf("a CSP in a meta tag: %q (it is a header)", csp)
	}
	b.checkLabels("HAVIP list")
	b.screenshot("signed-in")

	// Create a HAVIP with an automatic IP; the dialog opens from the keyboard and keeps the focus.
	b.do("open Apply with the keyboard", chromedp.Focus(chromedp.CSS(`[data-action=apply]`)), chromedp.KeyEvent(kb.Enter))
	b.wait("the Apply dialog", `document.querySelector('dialog[open] select[name=vpc-id]')`, 5*time.Second)
	for i := range 12 {
		b.do("tab", chromedp.KeyEvent(kb.Tab))
		if !eval[bool](b, `document.querySelector('dialog[open]').contains(document.activeElement)`) {
			t.Fatalf("focus left the dialog after %d tabs: %s", i+1, eval[string](b, `document.activeElement.outerHTML.slice(0, 120)`))
		}
		if style := eval[string](b, `getComputedStyle(document.activeElement).outlineStyle`); style == "none" {
			t.Errorf("no visible focus on %s", eval[string](b, `document.activeElement.outerHTML.slice(0, 120)`))
		}
	}
	b.checkLabels("Apply dialog")
	b.typeInto(`dialog[open] input[name=havip-name]`, "web-vip")
	b.choose(`dialog[open] select[name=vpc-id]`, vpc)
	b.choose(`dialog[open] select[name=subnet-id]`, subnet)
	b.do("OK", chromedp.Click(chromedp.CSS(`dialog[open] button[type=submit]`)))
	b.wait("the new HAVIP in the list", `!document.querySelector('dialog[open]') && document.querySelectorAll('tr[data-havip-id]').length === 1`, 5*time.Second)
	havip := eval[string](b, `document.querySelector('tr[data-havip-id]').dataset.havipId`)
	row := `tr[data-havip-id=` + js(havip) + `]`
	if got := b.text(row + ` [data-state]`); got != en["state.unbound"] {
		t.Errorf("new HAVIP's state: %q, want %q", got, en["state.unbound"])
	}
	vip := ok(t, s.do(t, key, "GET", "/v1/havips/"+havip, nil)).str("havip_set", 0, "vip")
	if !strings.Contains(b.text(row), vip) || !strings.Contains(b.text(row), "web-vip") {
		t.Errorf("the row shows %q, want its VIP %s and name", b.text(row), vip)
	}
	b.screenshot("created-automatic-ip")

	// A manual IP: the usable range is shown, the reserved .1 is refused before sending, and an
	// address in use is refused by the server, with its reason and request ID.
	b.do("open Apply", chromedp.Click(chromedp.CSS(`[data-action=apply]`)))
	b.typeInto(`dialog[open] input[name=havip-name]`, "web-vip-2")
	b.choose(`dialog[open] select[name=vpc-id]`, vpc)
	b.choose(`dialog[open] select[name=subnet-id]`, subnet)
	b.do("manual IP", chromedp.Click(chromedp.CSS(`dialog[open] input[value=manual]`)))
	b.wait("the usable range", `document.querySelector('dialog[open] .usable')?.innerText.includes('10.0.1.2 – 10.0.1.254')`, 5*time.Second)
	b.typeInto(`dialog[open] input[name=vip]`, "10.0.1.1")
	b.do("OK", chromedp.Click(chromedp.CSS(`dialog[open] button[type=submit]`)))
	b.wait("the reserved address refused inline", `document.querySelector('dialog[open] .error')?.innerText.includes('10.0.1.1')`, 5*time.Second)
	if got, want := b.text(`dialog[open] .error`), strings.NewReplacer("{ip}", "10.0.1.1", "{first}", "10.0.1.2", "{last}", "10.0.1.254").Replace(en["apply.outside"]); got != want {
		t.Errorf("inline error %q, want %q", got, want)
	}
	b.screenshot("manual-reserved-ip-refused")
	b.typeInto(`dialog[open] input[name=vip]`, cvm1.ip)
	b.do("OK", chromedp.Click(chromedp.CSS(`dialog[open] button[type=submit]`)))
	b.wait("the server's refusal inline", `document.querySelector('dialog[open] .error-reason') && document.querySelector('dialog[open] .error-request')`, 5*time.Second)
	if reason, req := eval[string](b, `document.querySelector('dialog[open] .error-reason').dataset.reason`), b.text(`dialog[open] .error-request`); reason != "InvalidParameterValue.Occupied" || !strings.Contains(req, "-") {
		t.Errorf("server refusal of an address in use: reason %q (want InvalidParameterValue.Occupied), request ID %q", reason, req)
	}
	b.screenshot("manual-ip-in-use-refused")
	b.do("close with Escape", chromedp.KeyEvent(kb.Escape))
	b.wait("the dialog closed", `!document.querySelector('dialog')`, 5*time.Second)
	if n := ok(t, s.do(t, key, "GET", "/v1/havips", nil)).str("total_count"); n != "1" {
		t.Errorf("refused applications made HAVIPs: %s in all", n)
	}

	// The details page: a two-CVM switch range; a mixed CVM+ENI range is refused.
	b.do("open the details", chromedp.Click(chromedp.CSS(row+` a`)))
	b.wait("the range editor", `document.querySelectorAll('.range-editor input[type=checkbox]').length === 7`, 10*time.Second)
	b.checkLabels("details page")
	if !eval[bool](b, fmt.Sprintf(`document.querySelector('.range-editor input[value=%s]').disabled === false`, js(eni))) {
		t.Error("the attached secondary ENI is not offered")
	}
	if !eval[bool](b, fmt.Sprintf(`document.querySelector('.range-editor input[value=%s]').disabled`, js(cvm3.eni))) {
		t.Error("a primary ENI is offered for the range")
	}
	for _, id := range []string{cvm1.id, cvm2.id} {
		b.do("check "+id, chromedp.Click(chromedp.CSS(`.range-editor input[value=`+js(id)+`]`)))
	}
	b.do("save the range", chromedp.Click(chromedp.CSS(`.range-editor button[type=submit]`)))
	b.wait("the range saved", fmt.Sprintf(`document.querySelector('.current-range').innerText.includes(%s) && document.querySelector('.current-range').innerText.includes(%s)`, js(cvm1.id), js(cvm2.id)), 5*time.Second)
	b.wait("two keepalived configurations", `document.querySelectorAll('.conf pre').length === 2`, 5*time.Second)
	if conf := b.text(`.conf pre`); !strings.Contains(conf, vip) || !strings.Contains(conf, "vrrp_instance") {
		t.Errorf("keepalived configuration: %q", conf)
	}
	b.do("copy", chromedp.Click(chromedp.CSS(`.conf button`)))
	b.wait("copied (or selected for Ctrl+C)", `document.getElementById('announce').innerText.includes(`+js(cvm1.id)+`) || document.getElementById('announce').innerText === `+js(en["keepalived.selected"]), 5*time.Second)
	b.screenshot("switch-range-two-cvms")
	b.do("check the ENI too", chromedp.Click(chromedp.CSS(`.range-editor input[value=`+js(eni)+`]`)))
	b.do("save the mixed range", chromedp.Click(chromedp.CSS(`.range-editor button[type=submit]`)))
	b.wait("the mixed range refused", `document.querySelector('.range-editor .error')?.innerText === `+js(en["range.mixed"]), 5*time.Second)
	b.screenshot("mixed-range-refused")
	if r := ok(t, s.do(t, key, "GET", "/v1/havips/"+havip, nil)); r.str("havip_set", 0, "havip_association_set", 0, "instance_type") != "CVM" || r.str("havip_set", 0, "havip_association_set", 2, "instance_id") != "" {
		t.Errorf("the range after a refused change: %s", r.raw)
	}

	// An announcement from outside the range is refused by the broker and listed on the page.
	if r := host1.announce(t, cvm3.eni, cvm3.mac, vip); r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED {
		t.Fatalf("a claim from outside the range: %v", r)
	}
	b.wait("the ARP rejection listed", fmt.Sprintf(`[...document.querySelectorAll('section[aria-labelledby=sec-rejections] tbody tr')].some((tr) => tr.innerText.includes(%s) && tr.innerText.includes('OutsideSwitchRange'))`, js(cvm3.eni)), 5*time.Second)
	b.screenshot("arp-rejection-listed")
	if r := ok(t, s.do(t, key, "GET", "/v1/havips/"+havip+"/arp-rejections", nil)); r.str("rejection_set", 0, "reason") != "OutsideSwitchRange" || strings.Contains(r.raw, "spiffe") || strings.Contains(r.raw, "agent") {
		t.Errorf("the HAVIP's rejections over REST (no agent identity wanted): %s", r.raw)
	}
	refused(t, "another account's rejections", s.do(t, s.keyB, "GET", "/v1/havips/"+havip+"/arp-rejections", nil), 404, "ResourceNotFound")
	refused(t, "the rejections of a malformed ID", s.do(t, key, "GET", "/v1/havips/havip-NOT/arp-rejections", nil), 400, "InvalidParameterValue.Malformed")

	// An ARP report through the broker turns the row to "Bound with CVM" within 1 s, with no reload.
	b.do("back to the list", chromedp.Click(chromedp.CSS(`nav.sidebar a[data-route=havips]`)))
	b.wait("the list", `document.querySelector(`+js(row+` [data-state=UNBIND]`)+`)`, 5*time.Second)
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	if r := host1.announce(t, cvm1.eni, cvm1.mac, vip); r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
		t.Fatalf("the claim of %s: %v", cvm1.eni, r)
	}
	accepted := time.Now()
	b.wait("Bound with CVM within 1 s", `document.querySelector(`+js(row+` [data-state=BIND]`)+`)`, time.Second)
	t.Logf("the row showed Bound with CVM %v after the broker accepted the claim", time.Since(accepted).Round(time.Millisecond))
	if !eval[bool](b, `window.notReloaded === true`) {
		t.Error("the page was reloaded")
	}
	if got := b.text(row + ` [data-state]`); !strings.Contains(got, en["state.bound"]) || !strings.Contains(got, cvm1.eni) || !strings.Contains(got, cvm1.id) || !strings.Contains(got, "host-1") {
		t.Errorf("bound state shows %q", got)
	}
	b.screenshot("bound-with-cvm-live")

	// Bind the EIP; the release is refused while it is bound; unbind; release.
	b.do("open the details", chromedp.Click(chromedp.CSS(row+` a`)))
	b.choose(`select[name=address-ip]`, eipIP)
	b.do("bind", chromedp.Click(chromedp.CSS(`section[aria-labelledby=sec-eip] button[type=submit]`)))
	b.wait("the EIP bound", `document.querySelector('.eip-bound')?.innerText.includes(`+js(eipIP)+`)`, 5*time.Second)
	b.screenshot("eip-bound")

	// The details page follows an owner change within 1 s too: the HAVIP moves to the second
	// CVM (applied at once, or when the broker's hold-down since the last change ends).
	var changed time.Time
	switch r := host2.announce(t, cvm2.eni, cvm2.mac, vip); r.GetResult() {
	case arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED:
		changed = time.Now()
	case arpbrokerv1.ClaimResult_CLAIM_RESULT_DEFERRED:
		deadline := time.Now().Add(10 * time.Second)
		for ok(t, s.do(t, key, "GET", "/v1/havips/"+havip, nil)).str("havip_set", 0, "network_interface_id") != cvm2.eni {
			if time.Now().After(deadline) {
				t.Fatal("the deferred claim of the second CVM was never applied")
			}
			time.Sleep(10 * time.Millisecond) // polling the API for the broker's change
		}
		changed = time.Now()
	default:
		t.Fatalf("the claim of %s: %v", cvm2.eni, r)
	}
	b.wait("the details page shows the new owner within 1 s", `document.querySelector('.facts [data-state=BIND]')?.innerText.includes(`+js(cvm2.eni)+`)`, time.Second-time.Since(changed))
	t.Logf("the details page showed the new owner %v after the change", time.Since(changed).Round(time.Millisecond))
	b.screenshot("details-follow-the-owner")
	b.do("release", chromedp.Click(chromedp.CSS(`[data-action=delete]`)))
	b.do("confirm", chromedp.Click(chromedp.CSS(`[data-action=confirm-delete]`)))
	b.wait("the release refused", `document.querySelector('dialog[open] .error-reason[data-reason="UnsupportedOperation.BindEIP"]') && document.querySelector('dialog[open] .error-request')`, 5*time.Second)
	b.screenshot("release-refused-while-bound")
	b.do("cancel", chromedp.KeyEvent(kb.Escape))
	b.do("unbind", chromedp.Click(chromedp.CSS(`[data-action=unbind]`)))
	b.wait("the EIP unbound", `document.querySelector('select[name=address-ip]') && !document.querySelector('.eip-bound')`, 5*time.Second)
	b.screenshot("eip-unbound")
	b.do("release", chromedp.Click(chromedp.CSS(`[data-action=delete]`)))
	b.do("confirm", chromedp.Click(chromedp.CSS(`[data-action=confirm-delete]`)))
	released := strings.NewReplacer("{id}", havip, "{vip}", vip).Replace(en["delete.released"])
	b.wait("the release notice on the list", `document.querySelector('.notice')?.innerText === `+js(released)+` && !document.querySelector(`+js(row)+`)`, 5*time.Second)
	if r := s.do(t, key, "GET", "/v1/havips/"+havip, nil); r.status != 404 {
		t.Errorf("the released HAVIP: %d %s", r.status, r.raw)
	}
	b.screenshot("released")

	// A hostile name: a HAVIP named with markup shows as text, in the list and on its page, and
	// runs nothing (the pages build the DOM from text nodes).
	hostile := `<img src=x onerror="window.pwned=1"><b>bold</b>`
	evil := ok(t, s.do(t, key, "POST", "/v1/havips", map[string]any{"vpc_id": vpc, "subnet_id": subnet, "havip_name": hostile})).str("havip", "havip_id")
	evilRow := `tr[data-havip-id=` + js(evil) + `]`
	b.wait("the hostile name listed", `document.querySelector(`+js(evilRow)+`)`, 2*time.Second)
	if got := b.text(evilRow + ` td:nth-child(2)`); got != hostile {
		t.Errorf("the hostile name shows as %q, want the text %q", got, hostile)
	}
	b.do("open its page", chromedp.Click(chromedp.CSS(evilRow+` a`)))
	b.wait("its page", `document.querySelector('main h1')?.innerText === `+js(hostile+" ("+evil+")"), 5*time.Second)
	if n := eval[int](b, `document.querySelectorAll('#app img, #app b, #app script').length`); n != 0 || eval[bool](b, `window.pwned === 1`) {
		t.Errorf("the hostile name became markup: %d elements, pwned %v", n, eval[bool](b, `window.pwned === 1`))
	}
	b.screenshot("hostile-name-as-text")
	if r := s.do(t, key, "DELETE", "/v1/havips/"+evil, nil); r.status != 200 {
		t.Fatalf("delete the hostile HAVIP: %d %s", r.status, r.raw)
	}
	// A crafted link whose HAVIP ID climbs out of /v1/havips/: what the page sends stays under
	// it (the ID is one path segment), so confirming the release releases no EIP.
	b.do("a crafted link", chromedp.Evaluate[chromedp.Void](`location.hash = '#/havips/..%2Faddresses%2F' + `+js(eipID)))
	b.wait("the crafted page", `document.querySelector('[data-action=delete]') && document.querySelector('section[aria-labelledby=sec-info] .error')`, 5*time.Second)
	b.do("release", chromedp.Click(chromedp.CSS(`[data-action=delete]`)))
	b.do("confirm", chromedp.Click(chromedp.CSS(`[data-action=confirm-delete]`)))
	b.wait("the release refused", `document.querySelector('dialog[open] .error')`, 5*time.Second)
	b.do("cancel", chromedp.KeyEvent(kb.Escape))
	if r := s.do(t, key, "GET", "/v1/addresses/"+eipID, nil); r.status != 200 || !strings.Contains(r.raw, eipIP) {
		t.Errorf("a crafted link released the EIP %s: %d %s", eipID, r.status, r.raw)
	}
	b.do("back to the list", chromedp.Click(chromedp.CSS(`nav.sidebar a[data-route=havips]`)))

	// 中文: another HAVIP (made over REST: it appears by itself), then the list and its page in
	// Chinese, with no English left but data and names.
	other := ok(t, s.do(t, key, "POST", "/v1/havips", map[string]any{"vpc_id": vpc, "subnet_id": subnet, "havip_name": "db-vip",
		"havip_association_set": []map[string]string{{"instance_id": eni, "instance_type": "ENI"}}})).str("havip", "havip_id")
	b.wait("the new HAVIP appears", `document.querySelector('tr[data-havip-id=`+js(other)+`]')`, 2*time.Second)
	// The filters go to the API: a name of no HAVIP lists none; reset lists it again.
	b.typeInto(`form.filters input[name=havip-name]`, "web-vip")
	b.do("search", chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)))
	b.wait("no HAVIP named web-vip", `!document.querySelector('tr[data-havip-id]') && document.querySelector('td.empty')?.innerText === `+js(en["havips.empty"]), 5*time.Second)
	b.do("reset", chromedp.Click(chromedp.CSS(`form.filters button[type=reset]`)))
	b.wait("the list again", `document.querySelector('tr[data-havip-id=`+js(other)+`]')`, 5*time.Second)
	// The switch range filter: of two HAVIPs, the one whose range holds the ENI.
	filler := ok(t, s.do(t, key, "POST", "/v1/havips", map[string]any{"vpc_id": vpc, "subnet_id": subnet, "havip_name": "web"})).str("havip", "havip_id")
	b.wait("two HAVIPs", `document.querySelectorAll('tr[data-havip-id]').length === 2`, 2*time.Second)
	b.typeInto(`form.filters input[name="havip-association.instance-id"]`, eni)
	b.do("search by range", chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)))
	b.wait("the HAVIP whose range holds the ENI", `document.querySelectorAll('tr[data-havip-id]').length === 1 && document.querySelector('tr[data-havip-id=`+js(other)+`]')`, 5*time.Second)
	b.do("reset", chromedp.Click(chromedp.CSS(`form.filters button[type=reset]`)))
	if r := s.do(t, key, "DELETE", "/v1/havips/"+filler, nil); r.status != 200 {
		t.Fatalf("delete the second HAVIP: %d %s", r.status, r.raw)
	}
	b.wait("the one HAVIP again", `document.querySelectorAll('tr[data-havip-id]').length === 1 && document.querySelector('tr[data-havip-id=`+js(other)+`]')`, 5*time.Second)
	b.choose(`header select`, "zh")
	b.wait("the list in Chinese", `document.documentElement.lang === 'zh-CN' && document.querySelector('main h1')?.innerText === `+js(zh["havips.title"])+` && document.querySelector('tr[data-havip-id] [data-state]')?.innerText === `+js(zh["state.unbound"]), 5*time.Second)
	// Every text node outside data the API returned (elements marked lang=en, pre, code) must
	// hold no English word but the product's names and the test's data.
	names, _ := json.Marshal([]string{"web-vip", "db-vip", "prod", "web-1", "web-2", "web-3", "web", "extra", "host-1", "host-2"})
	english := `(() => {
		const allowed = new Set(['HAVIP', 'IP', 'ID', 'ARP', 'HA', 'keepalived', 'Pacemaker', 'Heartbeat', 'English', 'MAC', 'conf']);
		const data = ` + string(names) + `;
		const words = [];
		const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			const el = n.parentElement;
			if (el.closest('[lang=en], pre, code, .visually-hidden') || el.getClientRects().length === 0) continue;
			let s = n.textContent.replace(/\b(vpc|subnet|ins|eni|havip|eip)-[a-z0-9]+\b/g, ' ').replace(/\d+(\.\d+){3}(\/\d+)?/g, ' ');
			for (const d of data) s = s.split(d).join(' ');
			for (const w of s.match(/[A-Za-z]{2,}/g) || []) if (!allowed.has(w)) words.push(w + ' in "' + n.textContent.trim() + '"');
		}
		return words;
	})()`
	if words := eval[[]string](b, english); len(words) > 0 {
		t.Errorf("English left on the Chinese list page: %v", words)
	}
	b.screenshot("zh-list")
	b.do("open the details", chromedp.Click(chromedp.CSS(`tr[data-havip-id=`+js(other)+`] a`)))
	b.wait("the details in Chinese", `document.querySelector('#sec-range')?.innerText === `+js(zh["range.title"])+` && document.querySelectorAll('.range-editor input').length === 7 && document.querySelector('#sec-rejections')`, 5*time.Second)
	if words := eval[[]string](b, english); len(words) > 0 {
		t.Errorf("English left on the Chinese details page: %v", words)
	}
	b.screenshot("zh-details")

	// 390 px wide: the same pages fit, the tables scroll inside their boxes.
	b.do("a phone's width", chromedp.EmulateViewport(390, 844))
	b.wait("the narrow layout", `getComputedStyle(document.querySelector('.layout')).flexDirection === 'column'`, 5*time.Second)
	b.checkFits("details page at 390 px")
	b.screenshot("narrow-details")
	b.do("back to the list", chromedp.Click(chromedp.CSS(`nav.sidebar a[data-route=havips]`)))
	b.wait("the list", `document.querySelector('tr[data-havip-id]')`, 5*time.Second)
	b.checkFits("list at 390 px")
	b.screenshot("narrow-list")
	b.do("1280×800 again", chromedp.EmulateViewport(1280, 800))
	b.checkFits("list at 1280 px")

	// Sign out; a wrong key is refused at sign-in (in the language chosen).
	b.do("sign out", chromedp.Click(chromedp.CSS(`button.signout`)))
	b.wait("the sign-in page", `document.querySelector('input[name=api-key]')`, 5*time.Second)
	if k := eval[string](b, `sessionStorage.getItem('havip-console.key') ?? ''`); k != "" {
		t.Errorf("the key is still kept after signing out")
	}
	b.typeInto(`input[name=api-key]`, "havip_thisisnotakeyofanyaccount0000")
	b.do("sign in", chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)))
	b.wait("the wrong key refused", `document.querySelector('form.signin .error')?.innerText.includes(`+js(zh["error.unauthorized"])+`)`, 5*time.Second)
	if eval[string](b, `sessionStorage.getItem('havip-console.key') ?? ''`) != "" || eval[bool](b, `!!document.querySelector('nav.sidebar')`) {
		t.Error("a wrong key signed in")
	}
	b.screenshot("wrong-key-refused")
	b.checkClean()
	t.Logf("console steps took %v; screenshots in suite/%s", time.Since(start).Round(time.Millisecond), artifacts)
}
