-- wrk script: replay pre-signed requests from $WRK_REQUESTS, one per line, in order.
-- Line format (tab-separated): path, content type, extra header name ("" for none), its value, body.
-- Run with -t1 so every request is sent once; "available" lets the harness tell whether the list wrapped.
local requests = {}
local index = 0

local function load()
  local list = {}
  local file = assert(io.open(os.getenv("WRK_REQUESTS"), "r"))
  for line in file:lines() do
    local path, ctype, name, value, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = { ["Content-Type"] = ctype }
    if name ~= "" then headers[name] = value end
    list[#list + 1] = wrk.format("POST", path, headers, body)
  end
  file:close()
  return list
end

init = function(args)
  requests = load()
end

request = function()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end

done = function(summary, latency, _)
  local available = 0
  for _ in io.lines(os.getenv("WRK_REQUESTS")) do available = available + 1 end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"available":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, available, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
