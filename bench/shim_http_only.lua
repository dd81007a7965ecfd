-- wrk script for the shim benchmark's HTTP-only run: GET of a path that is
-- no route, with the same bearer token as the GET runs, which jam-shim
-- answers with a small 404 (parsing, routing, the request log and metrics
-- as for any request) without a Postgres call.  (A HEAD of a static
-- document would do too, but wrk waits for the body a HEAD answer's
-- Content-Length announces.)
local token = os.getenv("BENCH_TOKEN") or ""

function init(args)
	if token ~= "" then
		wrk.headers["Authorization"] = "Bearer " .. token
	end
end
