-- POST /v1/bulk-sync with $REQCTX_LOAD_BULK_ENTRIES entries (default 20) and concurrency 4:
-- many requests share the service-wide semaphore, whose waiters scripts/load samples.
local common = dofile((os.getenv("REQCTX_LOAD_LUA_DIR") or "tests/load") .. "/common.lua")

local entries = common.env_int("REQCTX_LOAD_BULK_ENTRIES", 20)
local keys = common.env_int("REQCTX_LOAD_KEYS", 1000)
setup = common.setup_threads()
init = function(args) common.init() end

local headers = { ["Content-Type"] = "application/json" }

request = function()
    local items = {}
    for i = 1, entries do
        local k = math.random(0, keys - 1)
        items[i] = string.format('{"key":"load:bulk:%d","value":"value-%d","ttl":600}', k, k)
    end
    local body = '{"concurrency":4,"entries":[' .. table.concat(items, ",") .. "]}"
    return wrk.format("POST", "/v1/bulk-sync", headers, body)
end

done = common.done
