-- SPDX-License-Identifier: MIT
-- rigor.report.gate_md: gate.md, the gate's result as GitHub/GitLab-flavoured Markdown,
-- short enough for a merge-request comment or a CI job summary ($GITHUB_STEP_SUMMARY):
-- the verdict, the board x suite matrix, the images, what failed and why, flaky and
-- quarantined cases, and the changes since the baseline.

local M = {}

M.ICON = { passed = "✅", failed = "❌", flaky = "⚠️", skipped = "⏭️", infra = "🔧",
	norig = "🚫", interrupted = "⏹️" }
M.VERDICT = { pass = "PASS", fail = "FAIL", incomplete = "INCOMPLETE", interrupted = "INTERRUPTED" }

-- Rows (device types) and columns (suites) in the order the gate file gave them.
function M.matrix(doc)
	local rows, cols, at, rseen, cseen = {}, {}, {}, {}, {}
	for _, c in ipairs(doc.cells) do
		if not rseen[c.device_type] then
			rseen[c.device_type] = true
			rows[#rows + 1] = c.device_type
		end
		if not cseen[c.suite] then
			cseen[c.suite] = true
			cols[#cols + 1] = c.suite
		end
		at[c.device_type .. "\0" .. c.suite] = c
	end
	return rows, cols, function(r, s) return at[r .. "\0" .. s] end
end

-- The image of each device type, in cell order: { { device_type, image } }.
function M.images(doc)
	local list, seen = {}, {}
	for _, c in ipairs(doc.cells) do
		if c.image and not seen[c.device_type] then
			seen[c.device_type] = true
			list[#list + 1] = { device_type = c.device_type, image = c.image }
		end
	end
	return list
end

-- "9/9" style summary of a cell's cases.
-- "9/9" style summary of a cell's cases: passed of all, and how many failing ones are
-- quarantined (they do not change the cell's status, so the matrix says so).
function M.counts(c)
	local n, ok, q = 0, 0, 0
	for _, k in ipairs(c.cases or {}) do
		n = n + 1
		if k.status == "passed" then
			ok = ok + 1
		elseif k.quarantine and k.status ~= "skipped" then
			q = q + 1
		end
	end
	return string.format("%d/%d", ok, n) .. (q > 0 and string.format(", %d quarantined", q) or "")
end

local function esc(s)
	return (tostring(s or ""):gsub("[|\r\n]", { ["|"] = "\\|", ["\r"] = " ", ["\n"] = " " }))
end

local function short(s, n)
	s = tostring(s or "")
	return #s > n and s:sub(1, n - 1) .. "…" or s
end

function M.render(doc)
	local o = {}
	local function w(fmt, ...)
		o[#o + 1] = select("#", ...) > 0 and string.format(fmt, ...) or fmt
	end
	local t = doc.totals
	w("## rigor gate: release %s — %s (exit %d)\n\n", esc(doc.release.version),
		M.VERDICT[doc.verdict] or doc.verdict, doc.exit_code)
	w("%d cells on %s (host %s, rigor %s), %.1f min: %d passed, %d failed, %d flaky, %d skipped, %d infrastructure, %d without a rig.\n\n",
		t.cells, #doc.rigs > 0 and table.concat(doc.rigs, ", ") or "no rig", esc(doc.host),
		esc(doc.rigor_version), (doc.duration_ms or 0) / 60000, t.passed, t.failed, t.flaky,
		t.skipped, t.infra, t.norig)
	local rows, cols, cell = M.matrix(doc)
	w("| board |")
	for _, s in ipairs(cols) do w(" %s |", esc(s)) end
	w("\n|---|")
	for _ in ipairs(cols) do w("---|") end
	w("\n")
	for _, r in ipairs(rows) do
		w("| %s |", esc(r))
		for _, s in ipairs(cols) do
			local c = cell(r, s)
			if c then
				w(" %s %s %s%s |", M.ICON[c.status] or "", c.status, M.counts(c),
					c.required and "" or " (informative)")
			else
				w(" — |")
			end
		end
		w("\n")
	end
	w("\n")
	local images = {}
	for _, it in ipairs(M.images(doc)) do
		images[#images + 1] = string.format("- **%s**: `%s` version %s, sha256 `%s`\n", esc(it.device_type),
			esc(it.image.name), esc(it.image.version or "unknown"), esc(it.image.sha256 or "unknown"))
	end
	if #images > 0 then
		w("**Images**\n\n%s\n", table.concat(images))
	end
	local problems = {}
	for _, c in ipairs(doc.cells) do
		if c.status == "infra" or c.status == "norig" or c.status == "interrupted" or
			(c.status == "skipped" and c.required) then
			problems[#problems + 1] = string.format("- %s %s **%s**: %s\n", M.ICON[c.status] or "",
				esc(c.id), c.status, esc(c.reason))
		end
		for _, k in ipairs(c.cases or {}) do
			if k.status == "failed" or k.status == "flaky" then
				problems[#problems + 1] = string.format("- %s %s `%s` **%s**%s (runs: %s): %s\n",
					M.ICON[k.status], esc(c.device_type), esc(k.id), k.status,
					k.quarantine and (" — quarantined until " .. k.quarantine.expires .. ": " ..
						esc(k.quarantine.reason)) or (c.required and "" or " — informative"),
					table.concat(k.runs or {}, ", "), esc(short(k.message, 200)))
			end
		end
	end
	if #problems > 0 then
		w("**Failures and problems**\n\n%s\n", table.concat(problems))
	end
	if doc.baseline then
		local b = doc.baseline
		w("**Since %s**", esc(b.release or b.file))
		local parts = {}
		for _, k in ipairs({ "new-failure", "fixed", "still-failing", "new-case", "gone", "slower" }) do
			if b.counts and b.counts[k] then
				parts[#parts + 1] = string.format("%d %s", b.counts[k], k)
			end
		end
		w(": %s\n\n", #parts > 0 and table.concat(parts, ", ") or "no change")
		for _, ch in ipairs(b.changes or {}) do
			if ch.change ~= "new-case" then
				w("- %s `%s` %s%s\n", esc(ch.device_type), esc(ch.case), ch.change,
					ch.slower and string.format(" (%.1f s, was %.1f s)", ch.duration_ms / 1000,
						ch.baseline_ms / 1000) or "")
			end
		end
		w("\n")
	end
	for _, n in ipairs(doc.notes or {}) do
		w("> note: %s\n", esc(n))
	end
	w("\nFull report: `gate.html`; data: `gate.json`.\n")
	return table.concat(o)
end

return M
