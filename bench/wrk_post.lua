-- wrk script: POST one GraphQL request (BENCH_BODY) on every connection, count the answers that
-- contain BENCH_EXPECT, and print one JSON line with the latency percentiles (microseconds).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expect = os.getenv("BENCH_EXPECT")
  good = 0
  bad = 0
end

function response(status, headers, body)
  if status == 200 and string.find(body, expect, 1, true) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local good_total, bad_total = 0, 0
  for _, thread in ipairs(threads) do
    good_total = good_total + thread:get("good")
    bad_total = bad_total + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"good":%d,"bad":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"socket_errors":%d}\n',
    summary.requests, good_total, bad_total, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout))
end
