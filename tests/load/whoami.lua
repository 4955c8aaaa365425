-- GET /v1/whoami with a fresh X-Request-ID, a valid traceparent, a user and a deadline on every
-- request: exercises the request-ID, trace and deadline middleware and typed context values.
local common = dofile((os.getenv("REQCTX_LOAD_LUA_DIR") or "tests/load") .. "/common.lua")

local tid, n = 0, 0
setup = common.setup_threads()
init = function(args) tid = common.init() end

request = function()
    n = n + 1
    local headers = {
        ["X-Request-ID"] = string.format("load-%d-%d", tid, n),
        ["traceparent"] = "00-" .. common.hex(32) .. "-" .. common.hex(16) .. "-01",
        ["X-User-ID"] = "user-" .. (n % 100),
        ["X-Request-Timeout-Ms"] = "2000",
    }
    return wrk.format("GET", "/v1/whoami", headers)
end

done = common.done
