-- POST /v1/events to topic $REQCTX_LOAD_TOPIC (default "load"); scripts/load subscribes one
-- consumer first, so the run shows delivery and, when its queue fills, dropped events.
local common = dofile((os.getenv("REQCTX_LOAD_LUA_DIR") or "tests/load") .. "/common.lua")

local topic = os.getenv("REQCTX_LOAD_TOPIC") or "load"
local n = 0
setup = common.setup_threads()
init = function(args) common.init() end

local headers = { ["Content-Type"] = "application/json" }

request = function()
    n = n + 1
    local body = string.format('{"topic":"%s","payload":{"seq":%d,"text":"load test event"}}',
        topic, n)
    return wrk.format("POST", "/v1/events", headers, body)
end

done = common.done
