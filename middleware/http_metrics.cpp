#include "middleware/http_metrics.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "context/context.hpp"

namespace reqctx {
namespace {

constexpr std::array<double, 16> kBounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
constexpr std::size_t kBucketCount = kBounds.size() + 1;  // +Inf last

// The method label's values: RFC 9110's methods plus PATCH, and "other" for any other token, so
// a client cannot mint series (or a 4000-byte label) by sending made-up methods.
constexpr std::array<std::string_view, 10> kMethodNames{
    "other", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};

// Index into kMethodNames; 0 ("other") for any other method.
unsigned method_id(std::string_view m) noexcept {
    for (unsigned i = 1; i < kMethodNames.size(); ++i) {
        if (m == kMethodNames[i]) return i;
    }
    return 0;
}

int cancel_index(std::string_view reason) noexcept {
    if (reason == "client_disconnect") return 0;
    if (reason == "deadline") return 1;
    if (reason == "shutdown") return 2;
    return -1;
}

constexpr std::uint64_t series_key(std::size_t route, unsigned status, unsigned method) noexcept {
    return (static_cast<std::uint64_t>(route + 1) << 24) |
           (static_cast<std::uint64_t>(status) << 8) | method;
}

// The increment that takes an exported sum from `from` to `to` (prometheus adds it with one
// floating-point addition), so the sum reads as if each value had been observed there. Exact
// unless the addition rounds a tie away from `to` (the caller then adds the last ulp).
double exact_increment(double from, double to) noexcept {
    if (from == to) return 0.0;
    double d = to - from;
    if (!std::isfinite(from) || !std::isfinite(to)) return d;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    for (int i = 0; i < 4 && from + d != to; ++i) {
        d = std::nextafter(d, from + d < to ? kInf : -kInf);
    }
    return d;
}

}  // namespace

namespace detail {

// One thread's counts. Only the owning thread writes (a relaxed load and a store, no locked
// instruction); a scrape reads. A series slot's key is published after its count (release), so
// a reader that sees the key sees the count; likewise a histogram's sum before its bucket.
struct MetricsShard {
    static constexpr std::size_t kSeriesSlots = 512;  // power of two
    static constexpr std::size_t kMaxProbes = 16;     // beyond this, the locked path

    MetricsShard(std::size_t route_count, std::atomic<std::uint64_t>* first_seen)
        : seq_source(first_seen),
          routes(route_count),
          buckets(std::make_unique<std::atomic<std::uint64_t>[]>(route_count * kBucketCount)),
          sums(std::make_unique<std::atomic<double>[]>(route_count)) {}

    // False when the table has no room near the key's slot.
    bool count_series(std::uint64_t key) noexcept {
        std::size_t i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> 55);
        for (std::size_t n = 0; n < kMaxProbes; ++n, i = (i + 1) & (kSeriesSlots - 1)) {
            Series& slot = series[i];
            const std::uint64_t k = slot.key.load(std::memory_order_relaxed);
            if (k == key) {
                slot.count.store(slot.count.load(std::memory_order_relaxed) + 1,
                                 std::memory_order_relaxed);
                return true;
            }
            if (k == 0) {
                // Once per series and thread: the order series are added to the family in
                // (its exposition order) is the order they were first seen.
                slot.seq.store(seq_source->fetch_add(1, std::memory_order_relaxed),
                               std::memory_order_relaxed);
                slot.count.store(1, std::memory_order_relaxed);
                slot.key.store(key, std::memory_order_release);
                return true;
            }
        }
        return false;
    }

    struct Series {
        std::atomic<std::uint64_t> key{0};  // series_key(); 0: free
        std::atomic<std::uint64_t> count{0};
        std::atomic<std::uint64_t> seq{0};  // when first seen
    };

    std::atomic<std::uint64_t>* const seq_source;
    std::atomic<bool> claimed{true};  // by a live thread
    const std::size_t routes;
    std::array<Series, kSeriesSlots> series{};
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;  // [route][bucket], not cumulative
    std::unique_ptr<std::atomic<double>[]> sums;            // [route]
    std::array<std::atomic<std::uint64_t>, 3> cancelled{};  // by cancel_index()
};
static_assert((MetricsShard::kSeriesSlots >> 9) == 1, "count_series hashes to 9 bits");

}  // namespace detail

namespace {

using detail::MetricsShard;

std::atomic<std::uint64_t> g_next_id{1};

// The shard this thread used last, for the HttpMetrics with that id. Constant-initialised and
// trivially destructible: no TLS guard on the hot path.
struct ShardCache {
    std::uint64_t id;
    MetricsShard* shard;
};
constinit thread_local ShardCache t_cache{0, nullptr};
constinit thread_local bool t_exiting = false;

// Keeps this thread's shards alive while it runs and gives them back when it exits.
struct ShardHolder {
    std::vector<std::pair<std::uint64_t, std::shared_ptr<MetricsShard>>> held;
    ~ShardHolder() {
        for (auto& [id, shard] : held) shard->claimed.store(false, std::memory_order_release);
        t_cache = {0, nullptr};
        t_exiting = true;
    }
};

}  // namespace

struct HttpMetrics::State {
    prometheus::Family<prometheus::Counter>* requests = nullptr;
    prometheus::Family<prometheus::Histogram>* duration_family = nullptr;
    std::array<prometheus::Counter*, 3> cancelled{};  // by cancel_index()

    struct Reported {
        prometheus::Counter* counter = nullptr;
        std::uint64_t total = 0;  // already added to `counter`
    };
    struct ReportedHistogram {
        std::array<std::uint64_t, kBucketCount> buckets{};
        double sum = 0;
    };

    std::mutex mutex;  // guards the members below
    std::vector<std::string> routes;
    std::vector<prometheus::Histogram*> durations;  // by route index
    std::vector<std::shared_ptr<MetricsShard>> shards;
    std::map<std::uint64_t, Reported> reported;  // by series_key()
    std::vector<ReportedHistogram> reported_durations;
    std::array<std::uint64_t, 3> reported_cancelled{};
    struct Unusual {
        std::string method;
        std::size_t route = 0;
        unsigned status = 0;
        std::uint64_t seq = 0;
        std::uint64_t count = 0;
        Reported reported;
    };
    std::unordered_map<std::string, Unusual> unusual;  // series counted off the shards
    std::atomic<std::uint64_t> next_seq{0};            // first-seen order of series

    prometheus::Counter& series(std::string_view method, std::size_t route, unsigned status) {
        return requests->Add({{"method", std::string(method)},
                              {"route", routes[route]},
                              {"status", std::to_string(status)}});
    }

    std::shared_ptr<MetricsShard> claim_shard() {
        std::lock_guard lock(mutex);
        for (const auto& s : shards) {
            if (!s->claimed.load(std::memory_order_acquire)) {
                s->claimed.store(true, std::memory_order_relaxed);
                return s;
            }
        }
        shards.push_back(std::make_shared<MetricsShard>(routes.size(), &next_seq));
        return shards.back();
    }

    // An odd status or a full shard table. `method` is one of kMethodNames.
    void count_unusual(std::string_view method, std::size_t route, unsigned status) {
        std::string key(method);
        key += '\0';
        key += std::to_string(route);
        key += '\0';
        key += std::to_string(status);
        std::lock_guard lock(mutex);
        auto it = unusual.find(key);
        if (it == unusual.end()) {
            Unusual u{std::string(method),
                      route,
                      status,
                      next_seq.fetch_add(1, std::memory_order_relaxed),
                      0,
                      {}};
            it = unusual.emplace(std::move(key), std::move(u)).first;
        }
        ++it->second.count;
    }

    // A thread that is exiting has no shard: everything on the locked path.
    void record_locked(const Exchange& e, std::size_t route) {
        count_unusual(kMethodNames[method_id(e.method)], route, e.status);
        std::lock_guard lock(mutex);
        durations[route]->Observe(e.duration_s);
        const int c = cancel_index(e.cancel_reason);
        if (c >= 0) cancelled[static_cast<std::size_t>(c)]->Increment();
    }

    // Hands what the shards counted since the last scrape to the prometheus objects.
    void refresh() {
        std::lock_guard lock(mutex);
        struct Seen {
            std::uint64_t total = 0;
            std::uint64_t seq = ~std::uint64_t{0};  // the earliest over the shards
        };
        std::map<std::uint64_t, Seen> totals;  // by series_key()
        std::vector<ReportedHistogram> hist(routes.size());
        std::array<std::uint64_t, 3> cancels{};
        for (const auto& s : shards) {
            for (const auto& slot : s->series) {
                const std::uint64_t key = slot.key.load(std::memory_order_acquire);
                if (key == 0) continue;
                Seen& seen = totals[key];
                seen.total += slot.count.load(std::memory_order_relaxed);
                seen.seq = std::min(seen.seq, slot.seq.load(std::memory_order_relaxed));
            }
            for (std::size_t r = 0; r < std::min(s->routes, hist.size()); ++r) {
                for (std::size_t b = 0; b < kBucketCount; ++b) {
                    hist[r].buckets[b] +=
                        s->buckets[r * kBucketCount + b].load(std::memory_order_acquire);
                }
                hist[r].sum += s->sums[r].load(std::memory_order_relaxed);
            }
            for (std::size_t c = 0; c < cancels.size(); ++c) {
                cancels[c] += s->cancelled[c].load(std::memory_order_relaxed);
            }
        }
        // New series join the family in the order they were first seen, as they would have
        // had record() added them (a prometheus Family lists its series in insertion order).
        struct Update {
            std::uint64_t seq;
            std::uint64_t total;
            Reported* reported;
            std::string_view method;
            std::size_t route;
            unsigned status;
        };
        std::vector<Update> updates;
        for (const auto& [key, seen] : totals) {
            Reported& r = reported[key];
            if (seen.total <= r.total) continue;
            updates.push_back({seen.seq, seen.total, &r, kMethodNames[key & 0xff],
                               static_cast<std::size_t>((key >> 24) - 1),
                               static_cast<unsigned>((key >> 8) & 0xffff)});
        }
        for (auto& [key, u] : unusual) {
            if (u.count <= u.reported.total) continue;
            updates.push_back({u.seq, u.count, &u.reported, u.method, u.route, u.status});
        }
        std::sort(updates.begin(), updates.end(),
                  [](const Update& a, const Update& b) { return a.seq < b.seq; });
        for (const Update& u : updates) {
            if (u.reported->counter == nullptr) {
                u.reported->counter = &series(u.method, u.route, u.status);
            }
            u.reported->counter->Increment(static_cast<double>(u.total - u.reported->total));
            u.reported->total = u.total;
        }
        reported_durations.resize(hist.size());
        std::vector<double> increments(kBucketCount);
        for (std::size_t r = 0; r < hist.size(); ++r) {
            ReportedHistogram& before = reported_durations[r];
            bool any = false;
            for (std::size_t b = 0; b < kBucketCount; ++b) {
                const std::uint64_t now = hist[r].buckets[b];
                increments[b] =
                    now > before.buckets[b] ? static_cast<double>(now - before.buckets[b]) : 0.0;
                any = any || now > before.buckets[b];
            }
            if (!any) continue;
            const double to = hist[r].sum;
            const double first = exact_increment(before.sum, to);
            durations[r]->ObserveMultiple(increments, first);
            double held = before.sum + first;  // what the histogram now holds
            if (held != to && std::isfinite(held) && std::isfinite(to)) {
                // No single addition reaches `to` from there (a tie rounded away): one more,
                // exact, since `held` is within an ulp of `to`.
                std::fill(increments.begin(), increments.end(), 0.0);
                durations[r]->ObserveMultiple(increments, to - held);
                held += to - held;
            }
            before.buckets = hist[r].buckets;
            before.sum = held;
        }
        for (std::size_t c = 0; c < cancels.size(); ++c) {
            if (cancels[c] <= reported_cancelled[c]) continue;
            cancelled[c]->Increment(static_cast<double>(cancels[c] - reported_cancelled[c]));
            reported_cancelled[c] = cancels[c];
        }
    }
};

HttpMetrics::HttpMetrics(Metrics& metrics, std::function<std::size_t()> in_flight)
    : id_(g_next_id.fetch_add(1, std::memory_order_relaxed)), state_(std::make_shared<State>()) {
    state_->requests = &metrics.counter_family("http_requests_total",
                                               "HTTP requests by method, route pattern and status");
    state_->duration_family = &metrics.histogram_family("http_request_duration_seconds",
                                                        "HTTP request duration by route pattern");
    auto& cancelled = metrics.counter_family("http_requests_cancelled_total",
                                             "Requests whose context was cancelled, by reason");
    state_->cancelled = {&cancelled.Add({{"reason", "client_disconnect"}}),
                         &cancelled.Add({{"reason", "deadline"}}),
                         &cancelled.Add({{"reason", "shutdown"}})};

    auto* in_flight_gauge =
        &metrics.gauge_family("http_requests_in_flight", "HTTP requests being handled").Add({});
    auto* contexts_gauge =
        &metrics.gauge_family("reqctx_contexts_live", "Derived contexts alive in the process")
             .Add({});
    metrics.on_scrape(
        [state = state_, in_flight_gauge, contexts_gauge, in_flight = std::move(in_flight)] {
            in_flight_gauge->Set(in_flight ? static_cast<double>(in_flight()) : 0.0);
            contexts_gauge->Set(static_cast<double>(live_contexts()));
            state->refresh();
        });
}

HttpMetrics::~HttpMetrics() = default;

void HttpMetrics::set_routes(std::vector<std::string> routes) {
    const prometheus::Histogram::BucketBoundaries buckets(kBounds.begin(), kBounds.end());
    std::lock_guard lock(state_->mutex);
    auto& r = state_->routes;
    r = std::move(routes);
    if (r.empty() || r.back() != "unmatched") r.emplace_back("unmatched");
    state_->durations.clear();
    for (const auto& route : r) {
        state_->durations.push_back(&state_->duration_family->Add({{"route", route}}, buckets));
    }
}

MetricsShard* HttpMetrics::shard_slow() {
    if (t_exiting) return nullptr;
    thread_local ShardHolder holder;
    // Shards of HttpMetrics objects that are gone are held by this thread alone.
    std::erase_if(holder.held, [](const auto& h) { return h.second.use_count() == 1; });
    MetricsShard* shard = nullptr;
    for (const auto& [id, s] : holder.held) {
        if (id == id_) shard = s.get();
    }
    if (shard == nullptr) {
        auto claimed = state_->claim_shard();
        shard = claimed.get();
        holder.held.emplace_back(id_, std::move(claimed));
    }
    t_cache = {id_, shard};
    return shard;
}

void HttpMetrics::record(const Exchange& e) {
    const ShardCache cache = t_cache;
    MetricsShard* s = cache.id == id_ ? cache.shard : shard_slow();
    if (s == nullptr) {
        std::size_t routes = 0;
        {
            std::lock_guard lock(state_->mutex);
            routes = state_->routes.size();
        }
        if (routes != 0)
            state_->record_locked(e, e.route_index < routes ? e.route_index : routes - 1);
        return;
    }
    std::size_t route = e.route_index;
    if (route >= s->routes) {
        if (s->routes == 0) return;  // set_routes() was not called
        route = s->routes - 1;
    }
    const unsigned method = method_id(e.method);
    if (e.status > 0xffff || !s->count_series(series_key(route, e.status, method))) {
        state_->count_unusual(kMethodNames[method], route, e.status);
    }

    // The bucket prometheus::Histogram::Observe picks (std::lower_bound: the first bound not
    // below the value; the first bucket for NaN). Durations are small: a short linear search.
    const double v = e.duration_s;
    std::size_t b = 0;
    while (b < kBounds.size() && kBounds[b] < v) ++b;
    auto& sum = s->sums[route];
    sum.store(sum.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    auto& bucket = s->buckets[route * kBucketCount + b];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_release);

    if (!e.cancel_reason.empty()) {
        const int c = cancel_index(e.cancel_reason);
        if (c >= 0) {
            auto& n = s->cancelled[static_cast<std::size_t>(c)];
            n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }
    }
}

}  // namespace reqctx
