// Package console serves the web console: static HTML, CSS and JavaScript modules, embedded, calling only the public REST API.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Static holds the console's files (index.html, the modules, the style sheet, the dictionaries).
var Static, _ = fs.Sub(files, "static") // "static" is embedded above: Sub cannot fail

// Prefix is the path the console is served under.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console response: the console's own scripts,
// styles, images and API calls only; no inline script or style, no frames, no plugins.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console under Prefix, and redirects the bare path to it.
func Handler() http.Handler {
	static := http.StripPrefix(Prefix, http.FileServerFS(Static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache") // revalidate: a new gateway serves its own console
		static.ServeHTTP(w, r)
	})
}
