-- hookyard bench: every request carries its own delivery id.
--   file mode:   requests pre-signed by the harness, read from <prefix>.<thread id> (Slack bodies
--                differ per request and so do their signatures; HMAC in Lua would cost the fleet CPU).
--   splice mode: one signed body, a counter spliced into the delivery header (GitHub signs the body only).
--   template mode: <prefix>.template holds a request whose every "@@SPLICE@@@@@@@@" becomes a
--                16-digit counter (2 digits of thread id, 14 of index): the same width, so its
--                Content-Length holds (a batch of CloudEvents, each id carrying the counter).
local mode, prefix = nil, nil
local requests, count, index = {}, 0, 0
local head, tail = nil, nil
local parts = nil
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*all")
  f:close()
  return data
end

function init(args)
  mode, prefix = args[1], args[2]
  if mode == "file" then
    local f = assert(io.open(prefix .. "." .. thread_id, "rb"))
    while true do
      local len = f:read(8)
      if not len then break end
      count = count + 1
      requests[count] = f:read(tonumber(len))
    end
    f:close()
  elseif mode == "template" then
    local template, marker = slurp(prefix .. ".template"), "@@SPLICE@@@@@@@@"
    parts = {}
    local start = 1
    while true do
      local found = string.find(template, marker, start, true)
      if not found then break end
      parts[#parts + 1] = string.sub(template, start, found - 1)
      start = found + #marker
    end
    parts[#parts + 1] = string.sub(template, start)
  else
    head, tail = slurp(prefix .. ".head"), slurp(prefix .. ".tail")
  end
end

function request()
  index = index + 1
  if mode == "file" then
    if index > count then index = 1 end  -- ran out: repeats are stored once, and counted as such
    return requests[index]
  end
  if mode == "template" then
    return table.concat(parts, string.format("%02d%014d", thread_id, index))
  end
  return head .. thread_id .. "-" .. index .. tail
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
