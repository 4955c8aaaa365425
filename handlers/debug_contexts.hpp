#pragma once

// GET /debug/contexts (served only with --enable-debug): what is alive right now — requests in
// flight, live contexts, background tasks, the bulk semaphore. The app wires the sources.

#include <cstddef>
#include <cstdint>
#include <functional>

#include <nlohmann/json_fwd.hpp>

#include "handlers/handler.hpp"

namespace reqctx {

struct DebugSources {
    std::function<std::size_t()> requests_in_flight;
    // [{"name":..,"age_ms":..,"origin_request_id":..}, ...]
    std::function<nlohmann::json()> background_tasks;
    // {"capacity":..,"in_use":..,"waiters":..}
    std::function<nlohmann::json()> semaphore;
};

Handler make_debug_contexts_handler(DebugSources sources);

}  // namespace reqctx
