-- 90% GET / 10% PUT over a key space of $REQCTX_LOAD_KEYS keys (default 1000) named
-- load:key:<n>; scripts/load writes every key once before the run so GETs hit.
local common = dofile((os.getenv("REQCTX_LOAD_LUA_DIR") or "tests/load") .. "/common.lua")

local keys = common.env_int("REQCTX_LOAD_KEYS", 1000)
local value = string.rep("v", common.env_int("REQCTX_LOAD_VALUE_BYTES", 100))
setup = common.setup_threads()
init = function(args) common.init() end

request = function()
    local path = "/v1/cache/load:key:" .. math.random(0, keys - 1)
    if math.random(1, 10) == 1 then
        return wrk.format("PUT", path .. "?ttl=600", nil, value)
    end
    return wrk.format("GET", path)
end

done = common.done
