-- Shared by the wrk scenarios of scripts/load: loaded with dofile() from every scenario.
-- done() writes the run's figures as key=value lines to $REQCTX_LOAD_RESULT, which
-- scripts/load turns into the summary table and the latency plot.
local M = {}

-- Per-thread identity and random seed; wrk runs one Lua state per thread.
function M.setup_threads()
    local counter = 0
    return function(thread)
        counter = counter + 1
        thread:set("thread_id", counter)
    end
end

function M.init()
    local tid = thread_id or 0
    math.randomseed(os.time() * 1000 + tid)
    return tid
end

function M.env_int(name, default)
    local v = tonumber(os.getenv(name) or "")
    if v == nil then return default end
    return math.floor(v)
end

-- 32 (or 16) lowercase hex digits, for trace and span ids.
function M.hex(n)
    local parts = {}
    for i = 1, n / 4 do parts[i] = string.format("%04x", math.random(0, 0xffff)) end
    return table.concat(parts)
end

function M.done(summary, latency, requests)
    local path = os.getenv("REQCTX_LOAD_RESULT")
    local out = path and io.open(path, "w") or io.stdout
    local secs = summary.duration / 1e6
    local e = summary.errors
    local function ms(us) return string.format("%.3f", us / 1000) end
    out:write(string.format("requests=%d\n", summary.requests))
    out:write(string.format("duration_s=%.3f\n", secs))
    out:write(string.format("rps=%.1f\n", secs > 0 and summary.requests / secs or 0))
    out:write("p50_ms=" .. ms(latency:percentile(50)) .. "\n")
    out:write("p90_ms=" .. ms(latency:percentile(90)) .. "\n")
    out:write("p99_ms=" .. ms(latency:percentile(99)) .. "\n")
    out:write("max_ms=" .. ms(latency.max) .. "\n")
    -- wrk counts every response with status >= 400 here (reqctx sends no 1xx/3xx).
    out:write(string.format("non2xx=%d\n", e.status))
    out:write(string.format("socket_errors=%d\n", e.connect + e.read + e.write + e.timeout))
    out:write(string.format("timeouts=%d\n", e.timeout))
    if out ~= io.stdout then out:close() end
end

return M
