-- wrk script for the shim benchmark's GET runs: /jam/preimages/{hash}/meta,
-- and the path that is no route (a 404 without a Postgres call), both with
-- the same bearer token.
local token = os.getenv("BENCH_TOKEN") or ""

function init(args)
	if token ~= "" then
		wrk.headers["Authorization"] = "Bearer " .. token
	end
end
