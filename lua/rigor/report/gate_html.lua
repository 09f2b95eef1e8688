-- SPDX-License-Identifier: MIT
-- rigor.report.gate_html: gate.html, one self-contained page (inline CSS, no script, no
-- network) a release manager reads on a desk or a phone: the verdict, the board x suite
-- matrix with a colour per cell, the image of each device type, the baseline diff and,
-- per cell, its cases with the failure message, the console log tail and links to the
-- full artifacts, plus the rig, host and rigor version that ran it. Drill-down uses
-- <details>, which needs no JavaScript.

local md = require "rigor.report.gate_md"

local M = {}

-- Cell colours; tests look for them in a screenshot (host/tests/gate.sh).
M.COLORS = { passed = "#2e9e44", failed = "#d73a3a", flaky = "#e6a117", skipped = "#8a8f98",
	infra = "#7b4fd6", norig = "#5a5f66", interrupted = "#5a5f66" }

local function h(s)
	return (tostring(s == nil and "" or s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;",
		[">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function anchor(id)
	return "c-" .. tostring(id):gsub("[^%w]+", "-")
end

local CSS = [[
body{font:15px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0;padding:12px;color:#1d2126;background:#fff}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:700}
.v-pass{background:#2e9e44}.v-fail{background:#d73a3a}.v-incomplete,.v-interrupted{background:#7b4fd6}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.3em 0}
th,td{border:1px solid #d0d4da;padding:.35em .6em;text-align:left;vertical-align:top}
table.matrix td.cell{color:#fff;font-weight:600;min-width:7em}
table.matrix td.cell a{color:#fff;text-decoration:none;display:block}
table.matrix td.none{background:#f3f4f6;color:#8a8f98}
.small{font-size:.85em;color:#555}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:.5em;overflow-x:auto;font-size:.8em;max-height:22em;white-space:pre-wrap;word-break:break-all}
details{margin:.4em 0;border:1px solid #e1e4e8;border-radius:4px;padding:.3em .6em}
summary{cursor:pointer;font-weight:600}
.tag{display:inline-block;padding:0 .4em;border-radius:3px;color:#fff;font-size:.85em}
code{font-size:.9em}
]]

local function status_tag(st)
	return string.format('<span class="tag" style="background:%s">%s</span>', M.COLORS[st] or "#5a5f66",
		h(st))
end

function M.render(doc)
	local o = {}
	local function w(s) o[#o + 1] = s end
	local function f(fmt, ...) o[#o + 1] = string.format(fmt, ...) end
	local t = doc.totals
	w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n')
	w('<meta name="viewport" content="width=device-width,initial-scale=1">\n')
	f('<title>rigor gate %s: %s</title>\n<style>%s</style></head><body>\n', h(doc.release.version),
		h(md.VERDICT[doc.verdict] or doc.verdict), CSS)
	f('<h1>Release %s <span class="verdict v-%s">%s</span></h1>\n', h(doc.release.version),
		h(doc.verdict), h(md.VERDICT[doc.verdict] or doc.verdict))
	f('<p>exit %d · %d cells: %d passed, %d failed, %d flaky, %d skipped, %d infrastructure, %d without a rig · %.1f min<br>\n',
		doc.exit_code, t.cells, t.passed, t.failed, t.flaky, t.skipped, t.infra, t.norig,
		(doc.duration_ms or 0) / 60000)
	f('<span class="small">gate file %s · host %s · rigor %s · started %s · rigs %s</span></p>\n',
		h(doc.release.gate_file), h(doc.host), h(doc.rigor_version), h(doc.started),
		h(table.concat(doc.rigs or {}, ", ")))

	-- the matrix
	local rows, cols, cell = md.matrix(doc)
	w('<h2>Matrix</h2><div class="scroll"><table class="matrix"><tr><th>board</th>')
	for _, s in ipairs(cols) do f('<th>%s</th>', h(s)) end
	w('</tr>\n')
	for _, r in ipairs(rows) do
		f('<tr><th>%s</th>', h(r))
		for _, s in ipairs(cols) do
			local c = cell(r, s)
			if c then
				f('<td class="cell" style="background:%s"><a href="#%s">%s %s%s</a></td>',
					M.COLORS[c.status] or "#5a5f66", anchor(c.id), h(c.status), h(md.counts(c)),
					c.required and "" or '<br><span style="font-weight:400">informative</span>')
			else
				w('<td class="none">—</td>')
			end
		end
		w('</tr>\n')
	end
	w('</table></div>\n')

	-- images
	local img_rows = {}
	for _, it in ipairs(md.images(doc)) do
		img_rows[#img_rows + 1] = string.format('<tr><td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>',
			h(it.device_type), h(it.image.name), h(it.image.version or "unknown"), h(it.image.sha256 or "unknown"))
	end
	if #img_rows > 0 then
		w('<h2>Images</h2><div class="scroll"><table><tr><th>board</th><th>image</th><th>version</th><th>sha256</th></tr>\n')
		w(table.concat(img_rows, "\n"))
		w('</table></div>\n')
	end

	-- baseline
	if doc.baseline then
		local b = doc.baseline
		f('<h2>Since %s</h2>\n', h(b.release or b.file))
		if #(b.changes or {}) == 0 then
			w('<p>No case changed.</p>\n')
		else
			w('<div class="scroll"><table><tr><th>board</th><th>case</th><th>change</th><th>before</th><th>now</th></tr>\n')
			for _, ch in ipairs(b.changes) do
				f('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s%s</td></tr>\n', h(ch.device_type),
					h(ch.case), h(ch.change), h(ch.before or "—"), h(ch.after or "—"),
					ch.slower and string.format(" (%.1f s, was %.1f s)", ch.duration_ms / 1000, ch.baseline_ms / 1000) or "")
			end
			w('</table></div>\n')
		end
	end

	-- quarantine
	if #(doc.quarantine or {}) > 0 then
		w('<h2>Quarantine</h2><ul>\n')
		for _, q in ipairs(doc.quarantine) do
			f('<li><code>%s</code>%s until %s: %s%s</li>\n', h(q.case),
				q.device_type and (" on " .. h(q.device_type)) or "", h(q.expires), h(q.reason),
				q.used and "" or " <span class=\"small\">(not seen in this gate)</span>")
		end
		w('</ul>\n')
	end

	-- cells
	w('<h2>Cells</h2>\n')
	for _, c in ipairs(doc.cells) do
		local bad = c.status ~= "passed"
		for _, k in ipairs(c.cases or {}) do
			bad = bad or (k.status ~= "passed" and k.status ~= "skipped")
		end
		f('<details id="%s"%s><summary>%s %s · %s%s</summary>\n', anchor(c.id), bad and " open" or "",
			status_tag(c.status), h(c.device_type), h(c.suite_file), c.required and "" or " (informative)")
		f('<p class="small">rig %s · host %s · rigor %s · %.1f s', h(c.rig or "—"), h(c.host or "—"),
			h(c.rigor_version or "—"), (c.duration_ms or 0) / 1000)
		if c.image then
			f(' · image %s %s <code>%s</code>', h(c.image.name), h(c.image.version or ""),
				h((c.image.sha256 or ""):sub(1, 16)))
		end
		w('</p>\n')
		if c.reason then
			f('<p>%s</p>\n', h(c.reason))
		end
		if #(c.cases or {}) > 0 then
			w('<div class="scroll"><table><tr><th>case</th><th>status</th><th>runs</th><th>time</th></tr>\n')
			for _, k in ipairs(c.cases) do
				f('<tr><td>%s%s</td><td>%s</td><td>%s</td><td>%.1f s</td></tr>\n',
					k.log and string.format('<a href="%s">%s</a>', h(k.log), h(k.name or k.id)) or h(k.name or k.id),
					k.quarantine and ('<br><span class="small">quarantined until ' .. h(k.quarantine.expires) ..
						': ' .. h(k.quarantine.reason) .. '</span>') or "",
					status_tag(k.status), h(table.concat(k.runs or {}, ", ")), (k.duration_ms or 0) / 1000)
				if (k.status == "failed" or k.status == "flaky") and (k.message or k.log_tail) then
					f('<tr><td colspan="4">%s%s</td></tr>\n',
						k.message and ('<pre>' .. h(k.message) .. (k.where and ("\nat " .. h(k.where)) or "") .. '</pre>') or "",
						k.log_tail and ('<details><summary>console log tail</summary><pre>' .. h(k.log_tail) .. '</pre></details>') or "")
				end
			end
			w('</table></div>\n')
		end
		if #(c.attempts or {}) > 0 then
			w('<p class="small">attempts: ')
			for i, a in ipairs(c.attempts) do
				f('%s%s on %s exit %d (<a href="%s/output.log">output</a>%s)', i > 1 and " · " or "",
					a.kind == "rerun" and ("re-run " .. h(a.case)) or ("run " .. a.n), h(a.rig), a.exit_code,
					h(a.dir), a.results and string.format(', <a href="%s">json</a>, <a href="%s">junit</a>',
						h(a.results), h(a.junit)) or "")
			end
			w('</p>\n')
		end
		w('</details>\n')
	end
	for _, n in ipairs(doc.notes or {}) do
		f('<p class="small">note: %s</p>\n', h(n))
	end
	w('</body></html>\n')
	return table.concat(o)
end

return M
