package console_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openhavip/havip/gateway/console"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(console.Static, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dict(t *testing.T, lang string) map[string]string {
	t.Helper()
	var d map[string]string
	if err := json.Unmarshal([]byte(read(t, "i18n/"+lang+".json")), &d); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	return d
}

// scripts returns the text of every JavaScript module.
func scripts(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(console.Static, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".js") {
			out[p] = read(t, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDictionaries: English and 简体中文 have the same keys, none empty; every key the code asks
// for exists, and every key of the dictionaries is asked for somewhere.
func TestDictionaries(t *testing.T) {
	en, zh := dict(t, "en"), dict(t, "zh")
	if !slices.Equal(slices.Sorted(maps.Keys(en)), slices.Sorted(maps.Keys(zh))) {
		for k := range en {
			if _, ok := zh[k]; !ok {
				t.Errorf("%q is in en.json, not in zh.json", k)
			}
		}
		for k := range zh {
			if _, ok := en[k]; !ok {
				t.Errorf("%q is in zh.json, not in en.json", k)
			}
		}
	}
	placeholders := regexp.MustCompile(`\{\w+\}`)
	for k, v := range en {
		if strings.TrimSpace(v) == "" || strings.TrimSpace(zh[k]) == "" {
			t.Errorf("%q is empty in a dictionary", k)
		}
		if a, b := slices.Sorted(slices.Values(placeholders.FindAllString(v, -1))), slices.Sorted(slices.Values(placeholders.FindAllString(zh[k], -1))); !slices.Equal(a, b) {
			t.Errorf("%q: placeholders %v in English, %v in Chinese", k, a, b)
		}
	}
	// A key is a quoted "group.name" whose group is one of the dictionaries'.
	groups := map[string]bool{}
	for k := range en {
		groups[strings.SplitN(k, ".", 2)[0]] = true
	}
	quoted := regexp.MustCompile(`'([a-z]+)\.([A-Za-z0-9]+)'`)
	used := map[string]bool{}
	for name, src := range scripts(t) {
		for _, m := range quoted.FindAllStringSubmatch(src, -1) {
			if !groups[m[1]] || strings.HasSuffix(m[0], ".js'") || strings.HasSuffix(m[0], ".json'") {
				continue
			}
			key := m[1] + "." + m[2]
			used[key] = true
			if _, ok := en[key]; !ok {
				t.Errorf("%s asks for %q, which the dictionaries lack", name, key)
			}
		}
	}
	for k := range en {
		if !used[k] {
			t.Errorf("%q is in the dictionaries but no module uses it", k)
		}
	}
}

// TestNoInlineCodeOrText: the page holds no inline script, style or handler (the CSP would
// block them) and no text of its own (every string comes from the dictionaries); the modules
// never parse markup.
func TestNoInlineCodeOrText(t *testing.T) {
	html := read(t, "index.html")
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)\sstyle=`), regexp.MustCompile(`(?i)<style`), regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)(src|href)="(https?:)?//`), // a third-party asset
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("index.html: %q", m)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("index.html: a script without src: %s", tag)
		}
	}
	text := regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(html, "")
	if s := strings.TrimSpace(text); s != "" {
		t.Errorf("index.html has text of its own: %q", s)
	}
	for name, src := range scripts(t) {
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://", "setAttribute('style'"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
	css := read(t, "style.css")
	if strings.Contains(css, "@import") || strings.Contains(css, "url(") {
		t.Error("style.css loads something")
	}
}

// TestServed: the console is served under /console/ with a strict CSP and the right types;
// /console redirects to it.
func TestServed(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct{ path, typ string }{
		{"/console/", "text/html"}, {"/console/js/app.js", "text/javascript"}, {"/console/style.css", "text/css"},
		{"/console/i18n/zh.json", "application/json"},
	} {
		resp, err := client.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.typ) {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", c.path)
		}
	}
	resp, err := client.Get(srv.URL + "/console")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("/console: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
