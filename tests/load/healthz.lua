-- GET /healthz: the floor of the stack (no dependency touched).
local common = dofile((os.getenv("REQCTX_LOAD_LUA_DIR") or "tests/load") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/healthz"
setup = common.setup_threads()
init = function(args) common.init() end
done = common.done
