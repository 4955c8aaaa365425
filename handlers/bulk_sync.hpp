#pragma once

// POST /v1/bulk-sync: many cache writes under ONE service-wide weighted semaphore (tip 4 and 7:
// every acquire and every write takes the request context; no task outlives the request).
// The pure parts (body parsing/validation, the throttled sync core, the response body) are free
// functions that unit tests call without a server; BulkSyncHandler adapts them to HTTP.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "handlers/handler.hpp"
#include "handlers/request_body.hpp"

namespace reqctx {

class Semaphore;
namespace memcache {
class Client;
}

struct BulkSyncLimits {
    std::size_t max_entries = 10000;        // --bulk-max-entries
    std::size_t max_inflight = 64;          // --bulk-max-inflight (the semaphore's capacity)
    std::size_t default_concurrency = 8;    // --bulk-concurrency
    std::size_t max_value_bytes = 1 << 20;  // memcache item size
};

struct SyncEntry {
    std::string key;
    std::string value;
    std::uint32_t ttl = 0;
    std::string error;  // non-empty: the entry fails alone with this code, e.g. "invalid_key"
};

struct BulkSyncRequest {
    std::vector<SyncEntry> entries;
    std::size_t concurrency = 0;
};

struct BulkSyncParse {
    BulkSyncRequest request;
    std::optional<InputError> error;  // invalid_json, invalid_request (names the field),
                                      // too_many_entries
};

// Parses and validates a bulk-sync body. Shape errors fail the request; a bad key or an
// oversized value only marks its entry.
BulkSyncParse parse_bulk_sync(std::string_view body, const BulkSyncLimits& limits);

enum class EntryStatus : std::uint8_t { cancelled, ok, error };

struct EntryResult {
    EntryStatus status = EntryStatus::cancelled;  // never started, or stopped by the context
    std::error_code ec;                           // status error: the write's error
};

struct SyncCounts {
    std::size_t total = 0;
    std::size_t synced = 0;
    std::size_t failed = 0;
    std::size_t cancelled = 0;
};
SyncCounts count_results(const std::vector<EntryResult>& results) noexcept;

// Writes one entry; must honour ctx (deadline and cancellation).
using EntryWriter =
    std::function<net::awaitable<std::error_code>(Context ctx, const SyncEntry& entry)>;

// Runs at most `concurrency` writes of this call at once, each holding one unit of `sem` for
// the duration of its write. Stops starting writes once ctx is done (entries not written stay
// cancelled; a write that fails with ctx's error is cancelled too). Suspends until every write it
// started has finished: nothing it spawned outlives the call. `entries`, `sem` and `write` must
// outlive the call (the caller co_awaits it directly).
net::awaitable<std::vector<EntryResult>> throttled_sync(Context ctx, Semaphore& sem,
                                                        const std::vector<SyncEntry>& entries,
                                                        std::size_t concurrency,
                                                        const EntryWriter& write);

// The api.md response body; `error_code_of` names a write error (e.g. "cache_unavailable").
std::string bulk_sync_body(const std::vector<SyncEntry>& entries,
                           const std::vector<EntryResult>& results, double duration_ms,
                           const std::function<std::string_view(std::error_code)>& error_code_of);

// Called once per request with its final counts (bulk_sync_entries_total{result}).
using BulkSyncObserver = std::function<void(const SyncCounts& counts)>;

class BulkSyncHandler {
public:
    using not_request_scoped = void;
    BulkSyncHandler(memcache::Client& client, Semaphore& semaphore, BulkSyncLimits limits,
                    BulkSyncObserver observer = {})
        : client_(client), semaphore_(semaphore), limits_(limits), observer_(std::move(observer)) {}

    net::awaitable<Response> post(Context ctx, const Request& req, const RouteParams& params);

private:
    memcache::Client& client_;
    Semaphore& semaphore_;
    BulkSyncLimits limits_;
    BulkSyncObserver observer_;
};

}  // namespace reqctx
