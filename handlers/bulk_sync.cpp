#include "handlers/bulk_sync.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>

#include "clients/memcache/client.hpp"
#include "context/semaphore.hpp"
#include "handlers/cache.hpp"
#include "handlers/errors.hpp"

namespace reqctx {

namespace {

using nlohmann::json;

// A non-negative integer that fits 32 bits (memcache exptime), else nullopt.
std::optional<std::uint32_t> ttl_of(const json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u <= 0xffffffffULL) return static_cast<std::uint32_t>(u);
        return std::nullopt;
    }
    if (v.is_number_integer()) {
        const auto i = v.get<std::int64_t>();
        if (i >= 0 && i <= 0xffffffffLL) return static_cast<std::uint32_t>(i);
    }
    return std::nullopt;
}

// State shared by the workers of one throttled_sync call; the call outlives every worker.
struct SyncRun {
    Semaphore* sem;
    const std::vector<SyncEntry>* entries;
    const EntryWriter* write;
    std::vector<EntryResult> results;
    std::atomic<std::size_t> next{0};
};

bool is_context_error(std::error_code ec) noexcept {
    return ec == ContextErrc::canceled || ec == ContextErrc::deadline_exceeded;
}

// One worker: claims entries in order and writes each under one unit of the semaphore.
net::awaitable<void> sync_worker(Context ctx, std::shared_ptr<SyncRun> run) {
    const auto& entries = *run->entries;
    for (;;) {
        if (ctx.done()) co_return;
        const std::size_t i = run->next.fetch_add(1, std::memory_order_relaxed);
        if (i >= entries.size()) co_return;
        const SyncEntry& entry = entries[i];
        EntryResult& result = run->results[i];
        if (!entry.error.empty()) {
            result.status = EntryStatus::error;
            continue;
        }
        // Waiting for the shared semaphore dies with the request (tip 4).
        if (const std::error_code ec = co_await run->sem->acquire(ctx, 1)) co_return;
        std::error_code ec;
        {
            SemaphorePermit permit(*run->sem, 1);
            ec = co_await (*run->write)(ctx, entry);
        }
        if (!ec) {
            result.status = EntryStatus::ok;
        } else if (is_context_error(ec)) {
            // Only ctx reaches the writer, so a context error is ours: cancelled, not failed.
            result.status = EntryStatus::cancelled;
        } else {
            result.status = EntryStatus::error;
            result.ec = ec;
        }
    }
}

using JoinChannel =
    net::experimental::concurrent_channel<void(boost::system::error_code, std::exception_ptr)>;

void append_number(std::string& out, std::size_t n) {
    out += std::to_string(n);
}

}  // namespace

BulkSyncParse parse_bulk_sync(std::string_view body, const BulkSyncLimits& limits) {
    BulkSyncParse out;
    JsonParse parsed = parse_json_object(body, "with an \"entries\" array");
    if (parsed.error) {
        out.error = std::move(parsed.error);
        return out;
    }
    json& doc = parsed.value;  // entries' strings are moved out, not copied
    const auto entries_it = doc.find("entries");
    if (entries_it == doc.end() || !entries_it->is_array()) {
        out.error = invalid_request("Field \"entries\" is required and must be an array.");
        return out;
    }
    const std::size_t max_concurrency = std::max<std::size_t>(1, limits.max_inflight);
    out.request.concurrency =
        std::clamp<std::size_t>(limits.default_concurrency, 1, max_concurrency);
    if (const auto c = doc.find("concurrency"); c != doc.end()) {
        const bool integral = c->is_number_integer() || c->is_number_unsigned();
        const std::int64_t n = integral ? c->get<std::int64_t>() : 0;
        if (!integral || n < 1 || static_cast<std::uint64_t>(n) > max_concurrency) {
            out.error = invalid_request("Field \"concurrency\" must be an integer in 1.." +
                                        std::to_string(max_concurrency) + ".");
            return out;
        }
        out.request.concurrency = static_cast<std::size_t>(n);
    }
    json& entries = *entries_it;
    if (entries.size() > limits.max_entries) {
        out.error = InputError{"too_many_entries", "At most " + std::to_string(limits.max_entries) +
                                                       " entries are accepted per request; got " +
                                                       std::to_string(entries.size()) + "."};
        return out;
    }
    out.request.entries.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        json& e = entries[i];
        const std::string field = "entries[" + std::to_string(i) + "]";
        if (!e.is_object()) {
            out.error = invalid_request("Field \"" + field + "\" must be an object.");
            return out;
        }
        const auto key = e.find("key");
        if (key == e.end() || !key->is_string()) {
            out.error = invalid_request("Field \"" + field + ".key\" must be a string.");
            return out;
        }
        const auto value = e.find("value");
        if (value == e.end() || !value->is_string()) {
            out.error = invalid_request("Field \"" + field + ".value\" must be a string.");
            return out;
        }
        SyncEntry entry;
        entry.key = std::move(key->get_ref<std::string&>());
        entry.value = std::move(value->get_ref<std::string&>());
        // null = absent. Not a number is a wrong JSON type (the whole request fails, like key
        // and value); a number that is not a 32-bit non-negative integer fails the entry alone.
        if (const auto ttl = e.find("ttl"); ttl != e.end() && !ttl->is_null()) {
            if (!ttl->is_number()) {
                out.error = invalid_request("Field \"" + field + ".ttl\" must be a number.");
                return out;
            }
            if (const auto t = ttl_of(*ttl)) {
                entry.ttl = *t;
            } else {
                entry.error = "invalid_ttl";
            }
        }
        if (!is_valid_cache_key(entry.key)) {
            entry.error = "invalid_key";
        } else if (entry.error.empty() && entry.value.size() > limits.max_value_bytes) {
            entry.error = "value_too_large";
        }
        out.request.entries.push_back(std::move(entry));
    }
    return out;
}

SyncCounts count_results(const std::vector<EntryResult>& results) noexcept {
    SyncCounts c;
    c.total = results.size();
    for (const auto& r : results) {
        switch (r.status) {
            case EntryStatus::ok:
                ++c.synced;
                break;
            case EntryStatus::error:
                ++c.failed;
                break;
            case EntryStatus::cancelled:
                ++c.cancelled;
                break;
        }
    }
    return c;
}

net::awaitable<std::vector<EntryResult>> throttled_sync(Context ctx, Semaphore& sem,
                                                        const std::vector<SyncEntry>& entries,
                                                        std::size_t concurrency,
                                                        const EntryWriter& write) {
    auto run = std::make_shared<SyncRun>();
    run->sem = &sem;
    run->entries = &entries;
    run->write = &write;
    run->results.resize(entries.size());
    const std::size_t workers = std::min(std::max<std::size_t>(concurrency, 1), entries.size());
    if (workers == 0) co_return std::move(run->results);

    auto ex = co_await net::this_coro::executor;
    // Each worker reports on the channel when it ends; we receive one report per worker, so no
    // worker outlives this call (tip 7). The channel is shared so a late sender keeps it alive.
    auto done = std::make_shared<JoinChannel>(ex, workers);
    for (std::size_t w = 0; w < workers; ++w) {
        net::co_spawn(ex, sync_worker(ctx, run), [done](std::exception_ptr e) {
            done->try_send(boost::system::error_code{}, std::move(e));
        });
    }
    std::exception_ptr first_error;
    for (std::size_t w = 0; w < workers; ++w) {
        auto e = co_await done->async_receive(net::use_awaitable);
        if (e && !first_error) first_error = e;
    }
    if (first_error) std::rethrow_exception(first_error);
    co_return std::move(run->results);
}

std::string bulk_sync_body(const std::vector<SyncEntry>& entries,
                           const std::vector<EntryResult>& results, double duration_ms,
                           const std::function<std::string_view(std::error_code)>& error_code_of) {
    const SyncCounts c = count_results(results);
    std::string out;
    out.reserve(96 + entries.size() * 40);
    out += "{\"total\":";
    append_number(out, c.total);
    out += ",\"synced\":";
    append_number(out, c.synced);
    out += ",\"failed\":";
    append_number(out, c.failed);
    out += ",\"cancelled\":";
    append_number(out, c.cancelled);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", duration_ms);
    out += ",\"duration_ms\":";
    out += buf;
    out += ",\"results\":[";
    for (std::size_t i = 0; i < results.size() && i < entries.size(); ++i) {
        if (i > 0) out += ',';
        out += "{\"key\":\"";
        append_json_escaped(out, entries[i].key);
        out += "\",\"status\":\"";
        switch (results[i].status) {
            case EntryStatus::ok:
                out += "ok\"}";
                break;
            case EntryStatus::cancelled:
                out += "cancelled\"}";
                break;
            case EntryStatus::error: {
                out += "error\",\"error\":\"";
                const std::string_view code = !entries[i].error.empty()
                                                  ? std::string_view(entries[i].error)
                                                  : error_code_of(results[i].ec);
                append_json_escaped(out, code);
                out += "\"}";
                break;
            }
        }
    }
    out += "]}";
    return out;
}

net::awaitable<Response> BulkSyncHandler::post(Context ctx, const Request& req,
                                               const RouteParams& /*params*/) {
    const auto start = std::chrono::steady_clock::now();
    BulkSyncParse parsed = parse_bulk_sync(req.body(), limits_);
    if (parsed.error) {
        co_return error_response(ctx, req, http::status::bad_request, parsed.error->code,
                                 parsed.error->message);
    }
    const EntryWriter write = [client = &client_](Context c, const SyncEntry& e) {
        return client->set(std::move(c), e.key, e.value, memcache::Ttl{e.ttl});
    };
    const std::vector<EntryResult> results = co_await throttled_sync(
        ctx, semaphore_, parsed.request.entries, parsed.request.concurrency, write);
    const SyncCounts counts = count_results(results);
    if (observer_) observer_(counts);

    const double duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    // Client gone or shutdown: nobody reads a body; answer with the context's error (499/503).
    if (counts.cancelled > 0 && ctx.done() && cancel_reason_name(ctx) != "deadline") {
        co_return context_error_response(ctx, req);
    }
    // The deadline may have passed a moment before its timer marks ctx done.
    const auto deadline = ctx.deadline();
    const bool deadline_hit =
        counts.cancelled > 0 && (ctx.done() || (deadline && Clock::now() >= *deadline));
    Response res{deadline_hit ? http::status::gateway_timeout : http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = bulk_sync_body(parsed.request.entries, results, duration_ms,
                                [](std::error_code ec) { return cache_error_code(ec); });
    co_return res;
}

}  // namespace reqctx
