-- wrk script of bench/tiles.sh: GETs of the paths in BENCH_PATHS (one a
-- line, below the URL wrk is given), in turn, each thread from its own
-- place; with BENCH_ETAGS (lines "path etag"), each with If-None-Match:
-- its ETag, for the 304 a cache revalidating it gets, and then counts the
-- answers by status and prints them at the end ("status 304: N", a line a
-- status), for bench/tiles.sh to check that they were all 304s (the hook
-- only then: wrk copies every answer's headers and body for it).
-- BENCH_TOKEN, if set, is presented.
local token = os.getenv("BENCH_TOKEN") or ""
local paths = {}
local etags = {}
local next_path = 1
local thread_no = 0
local threads = {}
statuses = {}

local function lines(file)
	local out = {}
	if file == nil or file == "" then return out end
	for line in io.lines(file) do
		if line ~= "" then out[#out + 1] = line end
	end
	return out
end

function setup(thread)
	thread:set("id", thread_no)
	thread_no = thread_no + 1
	threads[#threads + 1] = thread
end

function init(args)
	paths = lines(os.getenv("BENCH_PATHS"))
	for _, line in ipairs(lines(os.getenv("BENCH_ETAGS"))) do
		local p, e = line:match("^(%S+) (.+)$")
		etags[p] = e
	end
	next_path = (id * 17) % #paths + 1
	if token ~= "" then
		wrk.headers["Authorization"] = "Bearer " .. token
	end
end

function request()
	local p = paths[next_path]
	next_path = next_path % #paths + 1
	local headers = {}
	if etags[p] then headers["If-None-Match"] = etags[p] end
	return wrk.format("GET", wrk.path .. p, headers)
end

if (os.getenv("BENCH_ETAGS") or "") ~= "" then
	function response(status, headers, body)
		statuses[status] = (statuses[status] or 0) + 1
	end

	function done(summary, latency, requests)
		local total = {}
		for _, thread in ipairs(threads) do
			for status, n in pairs(thread:get("statuses")) do
				total[status] = (total[status] or 0) + n
			end
		end
		for status, n in pairs(total) do
			io.write(string.format("status %d: %d\n", status, n))
		end
	end
end
