-- wrk script: Tessera's mixed load (issue 13). Per request, by weight:
--   80% POST /v1/check (the agency's API key; a seeded tuple with its expected answer)
--   10% POST /oauth/introspect (a JWT issued beforehand, the app's client credentials)
--    5% POST /oauth/token (client credentials of the agency's app)
--    4% GET  a list of the agency (accounts, users, bindings in turn) with the API key
--    1% PATCH /v1/agencies/{agy}/accounts/{acc} (renames the agency's account: a real,
--       audited write through the gate; it records no change-log entry, as no decision
--       depends on a name)
-- Tenants: Zipf (s = MIX_ZIPF_S, default 1) over the agencies in file order, or uniform
-- (MIX_DIST=uniform). Data: MIX_DATA, tab-separated lines written by bench/mixed/prep.py:
--   A <agency> <Bearer api key> <Basic client> <installation> <checks> <account>
--        checks: principal|permission|resource type|account or empty|1 or 0, joined by ';'
--   T <agency line number> <JWT>   issued beforehand, for introspection
-- MIX_WRITE_PCT raises the write share (taken from the checks) for the write-saturation runs.
-- Each request carries `x-request-id: <op><expected>-<n>`, which the server echoes, so a
-- response is matched to its request's kind whatever the connection; done() counts non-2xx
-- answers and wrong answers (a check whose `allowed` differs from the expected, an inactive
-- introspection, a token answer without a token) as errors.

local data_file = os.getenv("MIX_DATA") or "bench/mixed/data.tsv"
local dist = os.getenv("MIX_DIST") or "zipf"
local s = tonumber(os.getenv("MIX_ZIPF_S") or "1")
local write_pct = tonumber(os.getenv("MIX_WRITE_PCT") or "1")
-- MIX_ONLY=check|write sends only that kind (the cold walk, the write path alone).
local only = os.getenv("MIX_ONLY")
-- MIX_DIST=walk: each thread walks the agencies in file order from MIX_WALK_FROM (default 1),
-- one request per agency, threads interleaved (MIX_THREADS of them): the cold path.
local walk_from = tonumber(os.getenv("MIX_WALK_FROM") or "1")
local nthreads = tonumber(os.getenv("MIX_THREADS") or "1")

-- Per-kind latency: wrk's own distribution mixes the kinds, and a check's p99 is what the
-- targets name. request() stamps the time (CLOCK_MONOTONIC, through LuaJIT's ffi) under the
-- request's sequence number, which the echoed x-request-id carries back; response() files
-- the difference in a histogram of its kind (10 us buckets below 10 ms, 1 ms above).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } mix_timespec;
  int clock_gettime(int clk, mix_timespec *ts);
]]
local ts = ffi.new("mix_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local sent = {}
-- MIX_TRACE=FILE: every answer also goes to FILE as "<monotonic us> <latency us> <kind> <status>",
-- to see when the slow ones come (a periodic stall, one agency, one kind). One thread only.
local trace_path = os.getenv("MIX_TRACE")
local trace = trace_path and trace_path ~= "" and assert(io.open(trace_path, "a")) or nil
-- One flat table, "<kind>:<bucket>" -> count (wrk copies a thread's table to done() one level deep).
hist = {}
local function bucket(us)
  if us < 10000 then return math.floor(us / 10) end
  return 1000 + math.floor(us / 1000)
end
local function bucket_ms(b)
  if b < 1000 then return (b + 1) * 0.01 end
  return (b - 1000 + 1) * 1.0
end

-- MIX_DELAY_MS: each connection waits this long after an answer before its next request, so
-- the offered load is about connections / (delay + latency): the same load at 100 and 100k
-- agencies, below saturation, where latencies compare (a saturating run's latency is its
-- throughput seen through Little's law).
local delay_ms = tonumber(os.getenv("MIX_DELAY_MS") or "")
if delay_ms then
  function delay() return delay_ms end
end

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local D, cdf, n, seq
counts = { c = 0, i = 0, t = 0, r = 0, w = 0 }
bad = { c = 0, i = 0, t = 0, r = 0, w = 0 }
wrong, non2xx, unmatched = 0, 0, 0

local function split(s, sep)
  local out = {}
  for piece in (s .. sep):gmatch("(.-)" .. sep) do table.insert(out, piece) end
  return out
end

function load_data(path)
  local d = { agencies = {}, tokens = {} }
  for line in io.lines(path) do
    local f = split(line, "\t")
    if f[1] == "A" then
      local checks = {}
      for _, c in ipairs(split(f[6], ";")) do table.insert(checks, split(c, "|")) end
      table.insert(d.agencies, { f[2], f[3], f[4], f[5], checks, f[7] })
    elseif f[1] == "T" then
      table.insert(d.tokens, { tonumber(f[2]), f[3] })
    end
  end
  return d
end

function init(args)
  D = load_data(data_file)
  n = #D.agencies
  assert(n > 0, "no agencies in " .. data_file)
  assert(#D.tokens > 0, "no tokens in " .. data_file)
  if dist == "zipf" then
    cdf = {}
    local acc = 0
    for k = 1, n do
      acc = acc + 1 / (k ^ s)
      cdf[k] = acc
    end
    for k = 1, n do cdf[k] = cdf[k] / acc end
  elseif dist ~= "uniform" and dist ~= "walk" then
    error("MIX_DIST must be zipf, uniform or walk")
  end
  math.randomseed(os.time() * 1000 + id)
  seq = 0
end

local walked = 0
local function tenant()
  if dist == "walk" then
    walked = walked + 1
    local k = walk_from + id - 1 + (walked - 1) * nthreads
    if k > n then
      -- Past the last agency: later answers would come from warm indexes. This request
      -- repeats the last agency (one warm answer in the walk's distribution) and its
      -- response stops the thread.
      stopping = true
      k = n
    end
    return k
  end
  if not cdf then return math.random(n) end
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

local lists = { "accounts", "users", "bindings" }
local J = "application/json"
local F = "application/x-www-form-urlencoded"

function request()
  seq = seq + 1
  local a = D.agencies[tenant()]
  local r = math.random() * 100
  if only == "check" then r = 100 elseif only == "write" then r = 19 end
  local op, exp, method, path, ctype, auth, body
  if r < 10 then
    op, exp, method, path, ctype = "i", "1", "POST", "/oauth/introspect", F
    -- Tokens were issued in tenant-rank order for the first agencies; a drawn agency
    -- beyond them folds onto one of them.
    local k = tenant()
    local t = D.tokens[(k - 1) % #D.tokens + 1]
    auth, body = D.agencies[t[1]][3], "token=" .. t[2]
  elseif r < 15 then
    op, exp, method, path, ctype, auth = "t", "1", "POST", "/oauth/token", F, a[3]
    body = "grant_type=client_credentials&installation=" .. a[4]
  elseif r < 19 then
    op, exp, method, auth = "r", "1", "GET", a[2]
    path = "/v1/agencies/" .. a[1] .. "/" .. lists[seq % 3 + 1] .. "?limit=20"
  elseif r < 19 + write_pct or only == "write" then
    op, exp, method, ctype, auth = "w", "1", "PATCH", J, a[2]
    path = "/v1/agencies/" .. a[1] .. "/accounts/" .. a[6]
    body = '{"name":"mix ' .. id .. "-" .. seq .. '"}'
  else
    op, method, path, ctype, auth = "c", "POST", "/v1/check", J, a[2]
    local c = a[5][math.random(#a[5])]
    exp = c[5]
    body = '{"principal":"' .. c[1] .. '","permission":"' .. c[2] .. '","resource":{"type":"' .. c[3]
      .. '","id":"r' .. seq .. '","agency":"' .. a[1] .. '"' .. (c[4] ~= "" and (',"account":"' .. c[4] .. '"') or "") .. "}}"
  end
  counts[op] = counts[op] + 1
  sent[seq] = now_us()
  local h = { ["Authorization"] = auth, ["x-request-id"] = op .. exp .. "-" .. seq }
  if ctype then h["Content-Type"] = ctype end
  return wrk.format(method, path, h, body)
end

function response(status, headers, body)
  if stopping then wrk.thread:stop() end
  local rid = headers["x-request-id"] or headers["X-Request-Id"]
  if not rid then
    unmatched = unmatched + 1
    return
  end
  local op, exp = rid:sub(1, 1), rid:sub(2, 2)
  local k = tonumber(rid:sub(4))
  local t0 = k and sent[k]
  if t0 then
    sent[k] = nil
    local t1 = now_us()
    local key = op .. ":" .. bucket(t1 - t0)
    hist[key] = (hist[key] or 0) + 1
    if trace then
      trace:write(string.format("%.0f %.0f %s %d\n", t1, t1 - t0, op, status))
    end
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    bad[op] = (bad[op] or 0) + 1
    -- The first few failures of each thread, with the answer's start, say what went wrong.
    if non2xx <= 3 then
      io.stderr:write(string.format("MIX failed %s %d %s\n", op, status, (body or ""):sub(1, 300)))
    end
    return
  end
  local ok = true
  if op == "c" then
    ok = body:find(exp == "1" and '"allowed":true' or '"allowed":false', 1, true) ~= nil
  elseif op == "i" then
    ok = body:find('"active":true', 1, true) ~= nil
  elseif op == "t" then
    ok = body:find('"access_token"', 1, true) ~= nil
  end
  if not ok then
    wrong = wrong + 1
    bad[op] = (bad[op] or 0) + 1
  end
end

function done(summary, latency, requests)
  local t = { c = 0, i = 0, t = 0, r = 0, w = 0 }
  local b = { c = 0, i = 0, t = 0, r = 0, w = 0 }
  local w, nx, um = 0, 0, 0
  for _, th in ipairs(threads) do
    local tc, tb = th:get("counts"), th:get("bad")
    for k, _ in pairs(t) do
      t[k] = t[k] + (tc[k] or 0)
      b[k] = b[k] + (tb[k] or 0)
    end
    w = w + th:get("wrong")
    nx = nx + th:get("non2xx")
    um = um + th:get("unmatched")
  end
  local total = summary.requests
  local errors = nx + w + um + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("MIX requests=%d seconds=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    total, summary.duration / 1e6, total / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("MIX errors=%d error_rate=%.5f non2xx=%d wrong=%d unmatched=%d socket=%d timeouts=%d\n",
    errors, errors / math.max(total, 1), nx, w, um,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout))
  io.write(string.format("MIX sent check=%d introspect=%d token=%d read=%d write=%d; failed check=%d introspect=%d token=%d read=%d write=%d\n",
    t.c, t.i, t.t, t.r, t.w, b.c, b.i, b.t, b.r, b.w))
  -- Per kind: p50/p99/max (upper bucket bounds) from the merged histograms.
  for _, op in ipairs({ "c", "i", "t", "r", "w" }) do
    local merged, total, keys = {}, 0, {}
    for _, th in ipairs(threads) do
      for key, c in pairs(th:get("hist")) do
        local kop, kb = key:match("^(%a):(%d+)$")
        local b = tonumber(kb)
        if kop == op and not merged[b] then table.insert(keys, b) end
        if kop == op then
          merged[b] = (merged[b] or 0) + c
          total = total + c
        end
      end
    end
    if total > 0 then
      table.sort(keys)
      local function pct(p)
        local want, acc = total * p / 100, 0
        for _, b in ipairs(keys) do
          acc = acc + merged[b]
          if acc >= want then return bucket_ms(b) end
        end
        return bucket_ms(keys[#keys])
      end
      io.write(string.format("MIX kind=%s n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
        op, total, pct(50), pct(99), bucket_ms(keys[#keys])))
    end
  end
end
