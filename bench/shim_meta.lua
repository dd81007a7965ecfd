-- wrk script for the shim benchmark's GET /jam/preimages/{hash}/meta.
local token = os.getenv("BENCH_TOKEN") or ""

function init(args)
	if token ~= "" then
		wrk.headers["Authorization"] = "Bearer " .. token
	end
end
