-- wrk script for the shim benchmark's POST /jam/packages: each request a
-- fresh package of a 1 KiB payload for one of 16 services.  The payload is
-- base64 text made of a per-thread random prefix, a counter and filler, so
-- that no two requests submit the same package.  Counts the answers that
-- created a package (201; an identical resubmit gets 200) and prints their
-- number at the end, "created: N", for bench/shim.sh to hold against the
-- requests wrk counted.
local token = os.getenv("BENCH_TOKEN") or ""
local n = 0
local prefix
local filler = string.rep("A", 1344)
local threads = {}
created = 0

function setup(thread)
	threads[#threads + 1] = thread
end

function init(args)
	math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003)
	prefix = string.format("%08x", math.random(0, 0x7fffffff))
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	if token ~= "" then
		wrk.headers["Authorization"] = "Bearer " .. token
	end
end

function request()
	n = n + 1
	local body = string.format('{"service_id":"svc-%d","payload":"%s%016x%s"}', n % 16, prefix, n, filler)
	return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
	if status == 201 then created = created + 1 end
end

function done(summary, latency, requests)
	local total = 0
	for _, thread in ipairs(threads) do
		total = total + thread:get("created")
	end
	io.write(string.format("created: %d\n", total))
end
