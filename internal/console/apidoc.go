package console

import (
	"html"
	"net/http"
	"strings"
)

// apiIndex answers GET /api: the route table as JSON, or as a page for a
// browser. docs/console.md has the full reference.
func (c *Console) apiIndex(w http.ResponseWriter, r *http.Request) error {
	rs := c.apiRoutes()
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		type ep struct {
			Method  string `json:"method"`
			Path    string `json:"path"`
			Summary string `json:"summary"`
		}
		eps := make([]ep, 0, len(rs))
		for _, rt := range rs {
			eps = append(eps, ep{rt.method, rt.path, rt.summary})
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"endpoints": eps,
			"errors":    `4xx/5xx replies are {"error":"what is wrong","code":"machine_code"}`,
			"records":   `records are {"topic","partition","offset","timestamp" (unix ms),"key","key_encoding","value","value_encoding","headers":[{"key","value"}],"size"}; an encoding is json, text or base64`,
			"docs":      "docs/console.md in the Strom repository",
		})
		return nil
	}
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Strom HTTP API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1d2433}code{font:13px ui-monospace,monospace;background:#f1f3f7;padding:1px 4px;border-radius:4px}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ec;vertical-align:top}th{font-size:12px;text-transform:uppercase;color:#667}.m{font-weight:600;font-family:ui-monospace,monospace;font-size:13px}</style></head><body>
<h1>Strom HTTP API</h1><p>JSON over HTTP; errors are <code>{"error": "...", "code": "..."}</code> with a 4xx status for a request's mistake. Records are shown as <code>{"topic","partition","offset","timestamp","key","key_encoding","value","value_encoding","headers","size"}</code>, where an encoding is <code>json</code>, <code>text</code> or <code>base64</code>. Filters for messages and streams: <code>key=</code>, <code>key_prefix=</code>, <code>header=name=value</code>, <code>where=path op value</code> (ops <code>== != &gt; &gt;= &lt; &lt;= ~</code>). <a href="/">Back to the console</a>.</p>
<table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>`)
	for _, rt := range rs {
		b.WriteString(`<tr><td class="m">` + rt.method + `</td><td><code>` + html.EscapeString(rt.path) + `</code></td><td>` + html.EscapeString(rt.summary) + `</td></tr>`)
	}
	b.WriteString(`<tr><td class="m">GET</td><td><code>/metrics</code></td><td>Prometheus metrics (broker and console)</td></tr><tr><td class="m">GET</td><td><code>/healthz</code></td><td>Health: 200 "ok"; 200 "degraded" when partitions cannot write for now (disk full); 503 "failed" when a partition's log failed (restart to recover); not-ok partitions listed one per line</td></tr></table></body></html>`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Write([]byte(b.String()))
	return nil
}
