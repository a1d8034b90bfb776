-- wrk script for the Tollway benchmark (bench/run.py drives it).
--
-- Every request is the same small, non-streaming chat completion, POSTed with
-- keep-alive. The body and the bearer key come from the environment so that
-- the direct (upstream) run and the gateway run send byte-identical requests:
--
--   BENCH_BODY   JSON body (default: gpt-4o, one user message, max_tokens 16)
--   BENCH_AUTH   bearer key (the gateway's sk-... token; ignored by upstreams)
--
-- done() prints one line "BENCH_JSON {...}" with the exact counters and the
-- latency percentiles (microseconds) that bench/run.py parses.

local body = os.getenv("BENCH_BODY")
if body == nil or body == "" then
  body = '{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello in five words"}],"max_tokens":16}'
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. auth
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_min_us":%d,"lat_max_us":%d,' ..
    '"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
