-- wrk script for benchmarks/redemption_http.py: every request redeems a different code.
--
-- The driver writes one line per code, "<terminal key> <code> [<Idempotency-Key>]", and
-- passes the file as the first script argument. Thread n of N sends lines n, n+N, n+2N, ... so no code is sent
-- twice; each request carries its own terminal's key, so the load comes from many terminals.
-- At the end it prints one JSON line: status counts over all threads and the latency
-- percentiles (microseconds) that wrk measured.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("number", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local lines = {}
   for line in io.lines(args[1]) do
      table.insert(lines, line)
   end
   local step = tonumber(args[2])
   requests_of_thread = {}
   for i = number + 1, #lines, step do
      local token, code, key = lines[i]:match("^(%S+) (%S+) ?(%S*)$")
      local body = '{"code":"' .. code .. '","bill_amount":5000}'
      local headers = {
         ["Authorization"] = "Bearer " .. token,
         ["Content-Type"] = "application/json",
      }
      if key ~= "" then
         headers["Idempotency-Key"] = key
      end
      table.insert(requests_of_thread, wrk.format("POST", "/v1/terminal/redemptions", headers, body))
   end
   sent = 0
   statuses = {}
end

function request()
   sent = sent + 1
   local next_request = requests_of_thread[sent]
   if next_request == nil then
      -- Out of codes: stop this thread rather than send a code twice.
      wrk.thread:stop()
      return wrk.format("GET", "/healthz")
   end
   return next_request
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for status, n in pairs(counts) do
         totals[status] = (totals[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(totals) do
      table.insert(parts, string.format('"%s":%d', status, n))
   end
   io.write(string.format(
      '{"wrk":true,"requests":%d,"duration_us":%d,"statuses":{%s},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, table.concat(parts, ","),
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.timeout, summary.errors.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
