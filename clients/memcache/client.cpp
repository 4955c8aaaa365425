#include "clients/memcache/client.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <exception>
#include <mutex>
#include <utility>
#include <variant>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "clients/memcache/ketama.hpp"
#include "clients/memcache/protocol.hpp"
#include "context/asio.hpp"

namespace reqctx::memcache {

namespace {

using Clock = std::chrono::steady_clock;
using Strand = net::strand<net::any_io_executor>;
using net::experimental::awaitable_operators::operator||;

std::error_code err(MemcacheErrc e) {
    return make_error_code(e);
}

// ---- Call: the rendezvous between one caller and the connections serving it ---------------

enum class Kind : std::uint8_t { get, touch, store, remove, arith, noop, version };

// Shared by a waiting caller and the connection strands that answer its requests. The caller
// waits once (async_wait, cancellable through its slot); connections deliver parts. Whoever
// comes first, the result or the cancellation, completes the wait; the other is ignored.
class Call : public std::enable_shared_from_this<Call> {
public:
    explicit Call(std::size_t parts) : pending_(parts) {}

    // True once the caller no longer needs answers (completed, failed or cancelled).
    bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }

    // Records one answered part (or the first error, which completes the call at once).
    void finish_part(std::error_code ec) {
        std::unique_lock lock(mu_);
        if (result_ready_) return;
        if (ec) {
            ec_ = ec;
            pending_ = 0;
        } else if (pending_ > 0) {
            --pending_;
        }
        if (pending_ == 0) complete_locked(lock, ec_);
    }

    // Completes with void(std::error_code): empty, a part's error, or operation_aborted when
    // the handler's cancellation slot fired first.
    template <class Token>
    auto async_wait(Token&& token) {
        return net::async_initiate<Token, void(std::error_code)>(
            [self = shared_from_this()](auto handler) mutable {
                self->start_wait(std::move(handler));
            },
            token);
    }

    // Results, written by connections before finish_part (under mu_) and read by the caller
    // after the wait completed.
    std::mutex mu_;
    std::optional<Item> item_;
    bool found_ = false;
    std::uint64_t number_ = 0;
    std::string text_;
    std::vector<std::string> keys_;  // get_multi: requested keys (index = Request::key_index)
    std::unordered_map<std::string, Item> items_;

private:
    struct CancelFn {
        std::shared_ptr<Call> call;
        void operator()(net::cancellation_type type) const {
            if ((type & (net::cancellation_type::terminal | net::cancellation_type::partial |
                         net::cancellation_type::total)) != net::cancellation_type::none) {
                call->abort();
            }
        }
    };

    template <class Handler>
    void start_wait(Handler handler) {
        auto slot = net::get_associated_cancellation_slot(handler);
        auto ex = net::get_associated_executor(handler);
        std::unique_lock lock(mu_);
        if (result_ready_) {
            std::error_code ec = ec_;
            lock.unlock();
            net::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
            return;
        }
        slot_ = slot;
        executor_ = ex;
        // Boost 1.81: any_completion_handler move-assignment recurses forever; swap instead.
        net::any_completion_handler<void(std::error_code)>(std::move(handler)).swap(handler_);
        if (slot_.is_connected()) slot_.template emplace<CancelFn>(CancelFn{shared_from_this()});
    }

    void abort() {
        std::unique_lock lock(mu_);
        if (result_ready_) return;
        complete_locked(lock, make_error_code(std::errc::operation_canceled));
    }

    void complete_locked(std::unique_lock<std::mutex>& lock, std::error_code ec) {
        result_ready_ = true;
        finished_.store(true, std::memory_order_release);
        if (!handler_) return;  // the caller has not started waiting; start_wait posts
        auto handler = std::move(handler_);
        auto slot = slot_;
        auto ex = executor_;
        lock.unlock();
        // The slot is cleared on the caller's executor, where (by bind_context's contract) the
        // cancellation signal is emitted, never from inside the signal's own handler.
        net::post(ex, [h = std::move(handler), slot, ec]() mutable {
            if (slot.is_connected()) slot.clear();
            std::move(h)(ec);
        });
    }

    std::size_t pending_;
    std::error_code ec_;
    bool result_ready_ = false;
    std::atomic<bool> finished_{false};
    net::any_completion_handler<void(std::error_code)> handler_;
    net::cancellation_slot slot_;
    net::any_io_executor executor_;
};

// ---- Requests and connections ----------------------------------------------------------------

struct Request {
    std::shared_ptr<Call> call;
    Kind kind = Kind::get;
    proto::StoreMode mode = proto::StoreMode::set;
    bool incr = true;
    std::uint32_t opaque = 0;
    std::uint32_t key_index = 0;  // get_multi: first key (index into Call::keys_)
    std::uint32_t count = 1;      // commands (and responses) this entry stands for
    std::uint32_t answered = 0;   // responses consumed so far
    std::uint32_t flags = 0;
    std::int64_t ttl = 0;
    std::uint64_t cas = 0;  // also the arith delta
    std::optional<std::uint64_t> initial;
    std::string key;
    std::string value;
};

// The exptime for a relative ttl, read off the system clock as the command is written: a ttl
// above 30 days would otherwise be read by memcached as an absolute unix time.
std::int64_t exptime(std::int64_t ttl) {
    if (ttl <= proto::kMaxRelativeExptime) return ttl;
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now().time_since_epoch());
    return proto::wire_exptime(ttl, now.count());
}

void encode(std::string& out, const Request& r) {
    switch (r.kind) {
        case Kind::get:
            if (r.key.empty()) {
                // A get_multi batch: keys [key_index, key_index + count) of the call, fixed
                // before submission; consecutive opaques.
                for (std::uint32_t i = 0; i < r.count; ++i) {
                    proto::encode_get(out, r.call->keys_[r.key_index + i], r.opaque + i);
                }
            } else {
                proto::encode_get(out, r.key, r.opaque);
            }
            break;
        case Kind::touch:
            proto::encode_touch(out, r.key, exptime(r.ttl), r.opaque);
            break;
        case Kind::store:
            proto::encode_store(out, r.mode, r.key, r.value, exptime(r.ttl), r.flags, r.cas,
                                r.opaque);
            break;
        case Kind::remove:
            proto::encode_delete(out, r.key, r.opaque);
            break;
        case Kind::arith:
            proto::encode_arith(out, r.incr, r.key, r.cas, r.initial, exptime(r.ttl), r.opaque);
            break;
        case Kind::noop:
            proto::encode_noop(out);
            break;
        case Kind::version:
            proto::encode_version(out);
            break;
    }
}

// Maps one response to the request's result. Returns an error that breaks the connection
// (protocol_error) when the response cannot belong to the request or leaves us out of sync.
std::error_code deliver(Request& r, const proto::Response& resp) {
    using proto::Status;
    if (resp.opaque && r.kind != Kind::noop && r.kind != Kind::version &&
        *resp.opaque != r.opaque + r.answered) {
        r.call->finish_part(err(MemcacheErrc::protocol_error));
        return err(MemcacheErrc::protocol_error);
    }
    std::error_code result;
    bool ok = true;
    Call& c = *r.call;
    switch (resp.status) {
        case Status::server_error:
            result = resp.message.find("too large") != std::string_view::npos
                         ? err(MemcacheErrc::value_too_large)
                         : err(MemcacheErrc::server_error);
            c.finish_part(result);
            return {};
        case Status::client_error:
            if (r.kind == Kind::arith &&
                resp.message.find("non-numeric") != std::string_view::npos) {
                c.finish_part(err(MemcacheErrc::non_numeric_value));
                return {};
            }
            c.finish_part(err(MemcacheErrc::protocol_error));
            return err(MemcacheErrc::protocol_error);
        case Status::error:
            c.finish_part(err(MemcacheErrc::protocol_error));
            return err(MemcacheErrc::protocol_error);
        default:
            break;
    }
    {
        std::lock_guard lock(c.mu_);
        switch (r.kind) {
            case Kind::get:
                if (resp.status == Status::value) {
                    if (!c.keys_.empty()) {
                        c.items_.insert_or_assign(
                            c.keys_[r.key_index + r.answered],
                            Item{std::string(resp.data), resp.flags, resp.cas});
                    } else {
                        c.item_ = Item{std::string(resp.data), resp.flags, resp.cas};
                    }
                } else if (resp.status != Status::miss) {
                    ok = false;
                }
                break;
            case Kind::touch:
                if (resp.status == Status::stored) {
                    c.found_ = true;
                } else if (resp.status != Status::miss) {
                    ok = false;
                }
                break;
            case Kind::store:
                switch (resp.status) {
                    case Status::stored:
                        break;
                    case Status::not_stored:
                        result = err(MemcacheErrc::not_stored);
                        break;
                    case Status::exists:
                        result = err(MemcacheErrc::exists);
                        break;
                    case Status::not_found:
                        result = err(MemcacheErrc::not_found);
                        break;
                    default:
                        ok = false;
                }
                break;
            case Kind::remove:
                if (resp.status == Status::stored) {
                    c.found_ = true;
                } else if (resp.status != Status::not_found) {
                    ok = false;
                }
                break;
            case Kind::arith:
                switch (resp.status) {
                    case Status::value:
                        if (auto n = proto::parse_u64(resp.data)) {
                            c.number_ = *n;
                        } else {
                            ok = false;
                        }
                        break;
                    case Status::not_found:
                        result = err(MemcacheErrc::not_found);
                        break;
                    case Status::not_stored:
                        result = err(MemcacheErrc::not_stored);
                        break;
                    case Status::exists:
                        result = err(MemcacheErrc::exists);
                        break;
                    default:
                        ok = false;
                }
                break;
            case Kind::noop:
                ok = resp.status == Status::noop;
                break;
            case Kind::version:
                if (resp.status == Status::version) {
                    c.text_ = std::string(resp.message);
                } else {
                    ok = false;
                }
                break;
        }
    }
    if (!ok) {
        c.finish_part(err(MemcacheErrc::protocol_error));
        return err(MemcacheErrc::protocol_error);
    }
    c.finish_part(result);
    return {};
}

}  // namespace

// ---- Impl ---------------------------------------------------------------------------------

class Client::Impl : public std::enable_shared_from_this<Client::Impl> {
public:
    struct Server;

    // One TCP connection slot: a coroutine that connects, pipelines, reconnects. Every member
    // below is touched only on `strand`.
    struct Conn {
        Conn(Strand s, Server& srv, std::size_t max_value_bytes)
            : strand(std::move(s)),
              server(srv),
              socket(strand),
              wake(strand),
              max_value(max_value_bytes) {}
        Strand strand;
        Server& server;
        net::ip::tcp::socket socket;
        net::steady_timer wake;  // cancelled to wake the writer
        std::size_t max_value;
        std::atomic<ConnectionState> state{ConnectionState::disconnected};
        // Commands handed to this connection and not yet answered or dropped; read by submit()
        // on any thread to pick a connection, updated where a request enters or leaves.
        std::atomic<std::size_t> load{0};
        bool accepting = false;          // queue requests (connected or connecting) vs fail fast
        bool stopped = false;            // the client is closing
        std::deque<Request> queue;       // not yet written
        std::deque<Request> in_flight;   // written, awaiting a response, in order
        std::size_t in_flight_cmds = 0;  // commands written and unanswered (the window)
        std::uint32_t next_opaque = 1;
        std::string out;
        std::vector<char> in;
        std::size_t in_begin = 0;
        std::size_t in_end = 0;
    };

    struct Server {
        ServerAddress addr;
        std::size_t index = 0;
        std::vector<std::shared_ptr<Conn>> conns;
        std::atomic<std::size_t> round_robin{0};
        std::atomic<bool> alive{true};
        std::atomic<std::size_t> n_connected{0};
        std::atomic<std::size_t> n_connecting{0};
        std::atomic<std::size_t> n_disconnected{0};
        std::mutex mu;  // failures, dead, retry_at
        std::uint32_t failures = 0;
        bool dead = false;
        Clock::time_point retry_at{};
    };

    Impl(net::any_io_executor ex, ClientConfig cfg) : ex_(std::move(ex)), cfg_(std::move(cfg)) {
        if (cfg_.pool_size == 0) cfg_.pool_size = 1;
        if (cfg_.max_in_flight == 0) cfg_.max_in_flight = 1;
        if (cfg_.failure_limit == 0) cfg_.failure_limit = 1;
        for (auto& a : cfg_.servers) {
            if (a.weight == 0) a.weight = 1;  // as libmemcached does
        }
        servers_.reserve(cfg_.servers.size());
        for (std::size_t i = 0; i < cfg_.servers.size(); ++i) {
            auto s = std::make_unique<Server>();
            s->addr = cfg_.servers[i];
            s->index = i;
            for (std::size_t c = 0; c < cfg_.pool_size; ++c) {
                s->conns.push_back(
                    std::make_shared<Conn>(net::make_strand(ex_), *s, cfg_.max_item_size + 1024));
            }
            s->n_disconnected = cfg_.pool_size;
            servers_.push_back(std::move(s));
        }
        ring_ = std::make_shared<const KetamaRing>(cfg_.servers);
        full_ring_ = ring_;
    }

    net::any_io_executor ex_;
    ClientConfig cfg_;
    std::vector<std::unique_ptr<Server>> servers_;
    mutable std::mutex ring_mu_;
    std::mutex rebuild_mu_;  // serialises rebuilds so the last one sees the latest states
    std::shared_ptr<const KetamaRing> ring_;
    std::shared_ptr<const KetamaRing> full_ring_;  // every server, for when none is alive
    std::atomic<int> phase_{0};                    // 0 new, 1 running, 2 closed
    CancelHandle cancel_;
    std::shared_ptr<Call> joined_;
    std::atomic<bool> join_waiter_{false};  // a Call has one waiter: later closers poll

    std::shared_ptr<const KetamaRing> ring() const {
        std::lock_guard lock(ring_mu_);
        return ring_;
    }

    void rebuild_ring() {
        std::lock_guard rebuild(rebuild_mu_);
        std::vector<bool> live(servers_.size());
        for (std::size_t i = 0; i < servers_.size(); ++i) live[i] = servers_[i]->alive.load();
        auto ring = std::make_shared<const KetamaRing>(cfg_.servers, live);
        std::lock_guard lock(ring_mu_);
        ring_ = std::move(ring);
    }

    Result<std::size_t> route(std::string_view key) const {
        if (servers_.empty()) return err(MemcacheErrc::no_servers);
        if (servers_.size() == 1) return std::size_t{0};
        auto r = ring();
        if (auto s = r->pick(key)) return *s;
        // Every server is dead: keep the full ring's choice so the op fails fast as unreachable.
        return *full_ring_->pick(key);
    }

    void set_state(Conn& c, ConnectionState to) {
        const ConnectionState from = c.state.exchange(to);
        if (from == to) return;
        counter(*servers_[c.server.index], from).fetch_sub(1);
        counter(*servers_[c.server.index], to).fetch_add(1);
        if (cfg_.observer) cfg_.observer->on_connection_state(c.server.index, from, to);
    }

    static std::atomic<std::size_t>& counter(Server& s, ConnectionState st) {
        switch (st) {
            case ConnectionState::connected:
                return s.n_connected;
            case ConnectionState::connecting:
                return s.n_connecting;
            case ConnectionState::disconnected:
                break;
        }
        return s.n_disconnected;
    }

    // Connect failure or lost connection. Returns the time to wait before the next attempt.
    Clock::duration record_failure(Server& s) {
        bool ejected = false;
        Clock::duration wait{};
        {
            std::lock_guard lock(s.mu);
            ++s.failures;
            const auto now = Clock::now();
            if (s.failures >= cfg_.failure_limit) {
                if (!s.dead) {
                    s.dead = true;
                    s.alive = false;
                    ejected = true;
                    s.retry_at = now + cfg_.dead_retry;
                } else if (s.retry_at <= now) {
                    s.retry_at = now + cfg_.dead_retry;  // a failed probe: back off again
                }
                wait = s.retry_at - now;
            } else {
                wait = std::min<Clock::duration>(cfg_.dead_retry, std::chrono::milliseconds(50));
            }
        }
        if (ejected) {
            if (cfg_.eject_dead_servers) rebuild_ring();
            if (cfg_.observer) cfg_.observer->on_server_state(s.index, false);
        }
        return wait;
    }

    void record_success(Server& s) {
        bool readmitted = false;
        {
            std::lock_guard lock(s.mu);
            s.failures = 0;
            if (s.dead) {
                s.dead = false;
                s.alive = true;
                readmitted = true;
            }
        }
        if (readmitted) {
            if (cfg_.eject_dead_servers) rebuild_ring();
            if (cfg_.observer) cfg_.observer->on_server_state(s.index, true);
        }
    }

    // Picks the connection for a new request. Concurrent ops coalesce: the first connected
    // connection (pool order) holding fewer than max_in_flight unhandled commands takes it, so
    // many ops share one write() and one read() and wake memcached once, instead of being spread
    // thinly over the pool (on one core, 8 connections round-robin synced 2-3x fewer entries/s).
    // Further connections carry traffic only under real load, when the earlier ones have a full
    // window and callers would queue; then the least loaded connected one wins. None up:
    // round-robin (they are connecting).
    const std::shared_ptr<Conn>& pick(Server& s) const {
        const std::size_t n = s.conns.size();
        const std::shared_ptr<Conn>* least = nullptr;
        std::size_t least_load = 0;
        for (const auto& c : s.conns) {
            if (c->state.load(std::memory_order_relaxed) != ConnectionState::connected) continue;
            const std::size_t load = c->load.load(std::memory_order_relaxed);
            if (load < cfg_.max_in_flight) return c;
            if (!least || load < least_load) {
                least = &c;
                least_load = load;
            }
        }
        if (least) return *least;
        return s.conns[s.round_robin.fetch_add(1, std::memory_order_relaxed) % n];
    }

    static void release(Conn& c, std::size_t commands) {
        c.load.fetch_sub(commands, std::memory_order_relaxed);
    }

    // Hands a request to one of the server's connections. Thread-safe.
    std::error_code submit(std::size_t server, Request req) {
        if (phase_.load() != 1) return err(MemcacheErrc::closed);
        Server& s = *servers_[server];
        if (!s.alive.load(std::memory_order_relaxed)) return err(MemcacheErrc::server_unreachable);
        std::shared_ptr<Conn> chosen = pick(s);
        chosen->load.fetch_add(req.count, std::memory_order_relaxed);
        net::post(chosen->strand,
                  [this_ = shared_from_this(), chosen, r = std::move(req)]() mutable {
                      this_->enqueue(*chosen, std::move(r));
                  });
        return {};
    }

    void enqueue(Conn& c, Request r) {
        if (!c.accepting) {
            release(c, r.count);
            r.call->finish_part(c.stopped ? err(MemcacheErrc::closed)
                                          : err(MemcacheErrc::server_unreachable));
            return;
        }
        c.queue.push_back(std::move(r));
        // Requests of callers that gave up while a stalled server holds the window: drop them.
        if (c.queue.size() > 4 * cfg_.max_in_flight + 64) {
            std::erase_if(c.queue, [&c](const Request& q) {
                if (!q.call->finished()) return false;
                release(c, q.count);
                return true;
            });
        }
        c.wake.cancel();
    }

    static void fail_all(Conn& c, std::error_code ec) {
        for (auto& r : c.in_flight) {
            release(c, r.count - r.answered);
            r.call->finish_part(ec);
        }
        for (auto& r : c.queue) {
            release(c, r.count);
            r.call->finish_part(ec);
        }
        c.in_flight.clear();
        c.in_flight_cmds = 0;
        c.queue.clear();
    }

    // ---- connection coroutines (on c.strand) ----

    static net::awaitable<std::error_code> connect(Context ctx, std::shared_ptr<Conn> c,
                                                   std::chrono::milliseconds timeout) {
        auto [cctx, cancel] = with_timeout(ctx, timeout);
        net::ip::tcp::resolver resolver(c->strand);
        auto [rec, endpoints] = co_await resolver.async_resolve(
            c->server.addr.host, std::to_string(c->server.addr.port),
            bind_context(cctx, net::as_tuple(net::use_awaitable)));
        if (rec) co_return rec;
        boost::system::error_code ec;
        c->socket = net::ip::tcp::socket(c->strand);
        std::tie(ec, std::ignore) = co_await net::async_connect(
            c->socket, endpoints, bind_context(cctx, net::as_tuple(net::use_awaitable)));
        if (ec) co_return ec;
        c->socket.set_option(net::ip::tcp::no_delay(true), ec);
        co_return std::error_code{};
    }

    static net::awaitable<std::error_code> writer(std::shared_ptr<Conn> c, std::size_t window) {
        for (;;) {
            // Wait for work, or for room in the window for the next entry (a batch larger
            // than the window goes out alone on an idle connection).
            if (c->queue.empty() ||
                (c->in_flight_cmds > 0 && c->in_flight_cmds + c->queue.front().count > window)) {
                c->wake.expires_at(Clock::time_point::max());
                co_await c->wake.async_wait(net::as_tuple(net::use_awaitable));
                auto cs = co_await net::this_coro::cancellation_state;
                if (cs.cancelled() != net::cancellation_type::none) co_return std::error_code{};
                continue;
            }
            c->out.clear();
            while (!c->queue.empty() && c->out.size() < 256 * 1024) {
                Request& front = c->queue.front();
                // A batch larger than the window still goes out alone on an idle connection.
                if (c->in_flight_cmds > 0 && c->in_flight_cmds + front.count > window) break;
                Request r = std::move(front);
                c->queue.pop_front();
                if (r.call->finished()) {  // the caller gave up before it was sent
                    release(*c, r.count);
                    continue;
                }
                r.opaque = c->next_opaque;
                c->next_opaque += r.count;
                encode(c->out, r);
                r.value = std::string();
                c->in_flight_cmds += r.count;
                c->in_flight.push_back(std::move(r));
            }
            if (c->out.empty()) continue;
            auto [ec, n] = co_await net::async_write(c->socket, net::buffer(c->out),
                                                     net::as_tuple(net::use_awaitable));
            if (ec) co_return ec;
        }
    }

    static net::awaitable<std::error_code> reader(std::shared_ptr<Conn> c) {
        constexpr std::size_t kChunk = 64 * 1024;
        if (c->in.size() < kChunk) c->in.resize(kChunk);
        c->in_begin = c->in_end = 0;
        for (;;) {
            // Answer every complete response in the buffer.
            for (;;) {
                std::string_view avail(c->in.data() + c->in_begin, c->in_end - c->in_begin);
                if (avail.empty()) break;
                proto::Response resp;
                auto [used, perr] = proto::parse_response(avail, resp, c->max_value);
                if (perr) {
                    // The malformed answer belongs to the oldest request; the rest are
                    // failed as unreachable when the connection is dropped.
                    if (!c->in_flight.empty()) c->in_flight.front().call->finish_part(perr);
                    co_return perr;
                }
                if (used == 0) break;
                if (c->in_flight.empty()) co_return err(MemcacheErrc::protocol_error);
                const bool writer_may_wait = !c->queue.empty();
                Request& r = c->in_flight.front();
                c->in_begin += used;
                // A request that failed earlier in its batch still consumes its responses.
                std::error_code derr;
                if (!r.call->finished()) {
                    derr = deliver(r, resp);
                } else if (resp.opaque && r.kind != Kind::noop && r.kind != Kind::version &&
                           *resp.opaque != r.opaque + r.answered) {
                    derr = err(MemcacheErrc::protocol_error);
                }
                if (derr) co_return derr;
                --c->in_flight_cmds;
                release(*c, 1);
                if (++r.answered == r.count) c->in_flight.pop_front();
                if (writer_may_wait) c->wake.cancel();
            }
            if (c->in_begin == c->in_end) c->in_begin = c->in_end = 0;
            if (c->in.size() - c->in_end < kChunk / 4) {
                // Compact, then grow if one response needs more room than we have.
                std::copy(c->in.begin() + static_cast<std::ptrdiff_t>(c->in_begin),
                          c->in.begin() + static_cast<std::ptrdiff_t>(c->in_end), c->in.begin());
                c->in_end -= c->in_begin;
                c->in_begin = 0;
                if (c->in.size() - c->in_end < kChunk / 4) c->in.resize(c->in.size() * 2);
            }
            auto [ec, n] = co_await c->socket.async_read_some(
                net::buffer(c->in.data() + c->in_end, c->in.size() - c->in_end),
                net::as_tuple(net::use_awaitable));
            if (ec) co_return ec;
            c->in_end += n;
        }
    }

    static net::awaitable<std::error_code> wait_done(Context ctx) {
        co_await async_wait(ctx, net::as_tuple(net::use_awaitable));
        co_return ctx.err();
    }

    static net::awaitable<void> run_connection(Context ctx, std::shared_ptr<Impl> self,
                                               std::shared_ptr<Conn> c) {
        Server& s = c->server;
        while (!ctx.done()) {
            {
                Clock::time_point retry_at{};
                bool dead = false;
                {
                    std::lock_guard lock(s.mu);
                    dead = s.dead;
                    retry_at = s.retry_at;
                }
                if (dead && Clock::now() < retry_at) {
                    co_await sleep_for(ctx, retry_at - Clock::now());
                    continue;
                }
            }
            c->accepting = true;
            self->set_state(*c, ConnectionState::connecting);
            auto ec = co_await connect(ctx, c, self->cfg_.connect_timeout);
            if (ctx.done()) break;
            if (ec) {
                boost::system::error_code ignored;
                c->socket.close(ignored);
                c->accepting = false;
                self->set_state(*c, ConnectionState::disconnected);
                fail_all(*c, err(MemcacheErrc::server_unreachable));
                co_await sleep_for(ctx, self->record_failure(s));
                continue;
            }
            self->record_success(s);
            self->set_state(*c, ConnectionState::connected);
            c->wake.cancel();  // requests queued while connecting
            const std::size_t window = self->cfg_.max_in_flight;
            co_await (reader(c) || writer(c, window) || wait_done(ctx));
            // Whatever ended the session, this socket may hold a partial frame: never reuse it.
            boost::system::error_code ignored;
            c->socket.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
            c->socket.close(ignored);
            c->accepting = false;
            self->set_state(*c, ConnectionState::disconnected);
            if (ctx.done()) break;
            fail_all(*c, err(MemcacheErrc::server_unreachable));
            // A lost connection counts towards death but is retried at once while alive.
            const auto wait = self->record_failure(s);
            bool dead = false;
            {
                std::lock_guard lock(s.mu);
                dead = s.dead;
            }
            if (dead) co_await sleep_for(ctx, wait);
        }
        c->stopped = true;
        c->accepting = false;
        fail_all(*c, err(MemcacheErrc::closed));
        self->set_state(*c, ConnectionState::disconnected);
    }

    // Joins one connection coroutine (its completion handler).
    struct Joined {
        std::shared_ptr<Call> call;
        void operator()(std::exception_ptr e) const {
            // A coroutine only throws on a bug; surface it rather than lose it.
            if (e) std::rethrow_exception(e);
            call->finish_part({});
        }
    };

    void start(Context ctx) {
        int expected = 0;
        if (!phase_.compare_exchange_strong(expected, 1)) return;
        auto [child, cancel] = with_cancel(ctx);
        cancel_ = std::move(cancel);
        std::size_t total = 0;
        for (auto& s : servers_) total += s->conns.size();
        joined_ = std::make_shared<Call>(total);
        if (total == 0) joined_->finish_part({});
        for (auto& s : servers_) {
            for (auto& c : s->conns) {
                net::co_spawn(c->strand, run_connection(child, shared_from_this(), c),
                              Joined{joined_});
            }
        }
    }

    // Waits for `call` bounded by ctx; a cancelled wait reports the context's own error.
    static net::awaitable<std::error_code> wait(Context ctx, std::shared_ptr<Call> call) {
        if (auto e = ctx.err()) co_return e;
        auto ec = co_await call->async_wait(bind_context(ctx, net::use_awaitable));
        if (ec == std::errc::operation_canceled) {
            if (auto e = ctx.err()) co_return e;
            co_return make_error_code(ContextErrc::canceled);
        }
        co_return ec;
    }

    void report(Op op, Clock::time_point started, std::error_code ec,
                std::optional<bool> hit = std::nullopt) const {
        if (!cfg_.observer) return;
        cfg_.observer->on_op(OpEvent{op, ec, hit, Clock::now() - started});
    }

    std::error_code check_value(std::string_view v) const {
        return v.size() > cfg_.max_item_size ? err(MemcacheErrc::value_too_large)
                                             : std::error_code{};
    }

    // One request to the server owning r.key; waits for the answer.
    static net::awaitable<std::error_code> single(Context ctx, std::shared_ptr<Impl> self,
                                                  Request r) {
        if (auto e = ctx.err()) co_return e;
        auto server = self->route(r.key);
        if (!server) co_return server.error();
        auto call = r.call;
        if (auto e = self->submit(*server, std::move(r))) co_return e;
        co_return co_await wait(ctx, call);
    }

    static net::awaitable<std::error_code> to_server(Context ctx, std::shared_ptr<Impl> self,
                                                     std::size_t server, Request r) {
        if (auto e = ctx.err()) co_return e;
        if (server >= self->servers_.size()) co_return err(MemcacheErrc::invalid_server);
        auto call = r.call;
        if (auto e = self->submit(server, std::move(r))) co_return e;
        co_return co_await wait(ctx, call);
    }

    static net::awaitable<std::error_code> store(Context ctx, std::shared_ptr<Impl> self, Op op,
                                                 proto::StoreMode mode, std::string key,
                                                 std::string value, Ttl ttl, std::uint32_t flags,
                                                 std::uint64_t cas) {
        const auto started = Clock::now();
        std::error_code ec = validate_key(key);
        if (!ec) ec = self->check_value(value);
        if (!ec) {
            Request r;
            r.call = std::make_shared<Call>(1);
            r.kind = Kind::store;
            r.mode = mode;
            r.key = std::move(key);
            r.value = std::move(value);
            r.ttl = ttl.count();
            r.flags = flags;
            r.cas = cas;
            ec = co_await single(ctx, self, std::move(r));
        }
        self->report(op, started, ec);
        co_return ec;
    }

    static net::awaitable<Result<std::uint64_t>> arith(Context ctx, std::shared_ptr<Impl> self,
                                                       bool incr, std::string key,
                                                       std::uint64_t delta,
                                                       std::optional<std::uint64_t> initial,
                                                       Ttl ttl) {
        const auto started = Clock::now();
        const Op op = incr ? Op::incr : Op::decr;
        if (auto ec = validate_key(key)) {
            self->report(op, started, ec);
            co_return ec;
        }
        Request r;
        auto call = std::make_shared<Call>(1);
        r.call = call;
        r.kind = Kind::arith;
        r.incr = incr;
        r.key = std::move(key);
        r.cas = delta;
        r.initial = initial;
        r.ttl = ttl.count();
        auto ec = co_await single(ctx, self, std::move(r));
        self->report(op, started, ec);
        if (ec) co_return ec;
        std::lock_guard lock(call->mu_);
        co_return call->number_;
    }
};

// ---- Client -------------------------------------------------------------------------------

Client::Client(net::any_io_executor ex, ClientConfig cfg)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(cfg))) {}

Client::~Client() {
    impl_->phase_.store(2);
    impl_->cancel_.cancel();
}

void Client::start(Context ctx) {
    impl_->start(std::move(ctx));
}

net::awaitable<std::error_code> Client::close(Context ctx) {
    auto self = impl_;
    const int was = self->phase_.exchange(2);
    self->cancel_.cancel();
    if (was == 0 || !self->joined_) co_return std::error_code{};
    if (!self->join_waiter_.exchange(true)) co_return co_await Impl::wait(ctx, self->joined_);
    while (!self->joined_->finished()) {
        if (auto ec = co_await sleep_for(ctx, std::chrono::milliseconds(5))) co_return ec;
    }
    co_return std::error_code{};
}

net::awaitable<Result<std::optional<Item>>> Client::get(Context ctx, std::string key) {
    auto self = impl_;
    const auto started = Clock::now();
    if (auto ec = validate_key(key)) {
        self->report(Op::get, started, ec);
        co_return ec;
    }
    Request r;
    auto call = std::make_shared<Call>(1);
    r.call = call;
    r.kind = Kind::get;
    r.key = std::move(key);
    auto ec = co_await Impl::single(ctx, self, std::move(r));
    if (ec) {
        self->report(Op::get, started, ec);
        co_return ec;
    }
    std::optional<Item> item;
    {
        std::lock_guard lock(call->mu_);
        item = std::move(call->item_);
    }
    self->report(Op::get, started, {}, item.has_value());
    co_return item;
}

net::awaitable<Result<std::unordered_map<std::string, Item>>> Client::get_multi(
    Context ctx, std::vector<std::string> keys) {
    auto self = impl_;
    const auto started = Clock::now();
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::error_code ec;
    for (const auto& k : keys) {
        if ((ec = validate_key(k))) break;
    }
    if (!ec) ec = ctx.err();
    std::unordered_map<std::string, Item> items;
    if (!ec && !keys.empty()) {
        // Order keys by owning server so each server gets one contiguous batch: one strand hop
        // and one queue entry per server.
        std::vector<std::pair<std::size_t, std::string>> owned;
        owned.reserve(keys.size());
        for (auto& k : keys) {
            auto server = self->route(k);
            if (!server) {
                ec = server.error();
                break;
            }
            owned.emplace_back(*server, std::move(k));
        }
        if (!ec) {
            std::stable_sort(owned.begin(), owned.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
            auto call = std::make_shared<Call>(owned.size());
            call->keys_.reserve(owned.size());
            for (auto& o : owned) call->keys_.push_back(std::move(o.second));
            for (std::size_t i = 0; i < owned.size() && !ec;) {
                std::size_t j = i;
                while (j < owned.size() && owned[j].first == owned[i].first) ++j;
                Request r;
                r.call = call;
                r.kind = Kind::get;
                r.key_index = static_cast<std::uint32_t>(i);
                r.count = static_cast<std::uint32_t>(j - i);
                ec = self->submit(owned[i].first, std::move(r));
                i = j;
            }
            if (ec) {
                call->finish_part(ec);  // releases batches already queued elsewhere
            } else {
                ec = co_await Impl::wait(ctx, call);
            }
            if (!ec) {
                std::lock_guard lock(call->mu_);
                items = std::move(call->items_);
            }
        }
    }
    self->report(Op::get_multi, started, ec);
    if (ec) co_return ec;
    co_return items;
}

net::awaitable<std::error_code> Client::set(Context ctx, std::string key, std::string value,
                                            Ttl ttl, std::uint32_t flags) {
    return Impl::store(std::move(ctx), impl_, Op::set, proto::StoreMode::set, std::move(key),
                       std::move(value), ttl, flags, 0);
}

net::awaitable<std::error_code> Client::add(Context ctx, std::string key, std::string value,
                                            Ttl ttl, std::uint32_t flags) {
    return Impl::store(std::move(ctx), impl_, Op::add, proto::StoreMode::add, std::move(key),
                       std::move(value), ttl, flags, 0);
}

net::awaitable<std::error_code> Client::replace(Context ctx, std::string key, std::string value,
                                                Ttl ttl, std::uint32_t flags) {
    return Impl::store(std::move(ctx), impl_, Op::replace, proto::StoreMode::replace,
                       std::move(key), std::move(value), ttl, flags, 0);
}

net::awaitable<std::error_code> Client::append(Context ctx, std::string key, std::string value) {
    return Impl::store(std::move(ctx), impl_, Op::append, proto::StoreMode::append, std::move(key),
                       std::move(value), Ttl{0}, 0, 0);
}

net::awaitable<std::error_code> Client::prepend(Context ctx, std::string key, std::string value) {
    return Impl::store(std::move(ctx), impl_, Op::prepend, proto::StoreMode::prepend,
                       std::move(key), std::move(value), Ttl{0}, 0, 0);
}

net::awaitable<std::error_code> Client::cas(Context ctx, std::string key, std::string value,
                                            std::uint64_t cas, Ttl ttl, std::uint32_t flags) {
    // cas 0 would mean "no compare" on the wire; no item ever has cas 0.
    if (cas == 0) cas = UINT64_MAX;
    return Impl::store(std::move(ctx), impl_, Op::cas, proto::StoreMode::set, std::move(key),
                       std::move(value), ttl, flags, cas);
}

net::awaitable<Result<bool>> Client::remove(Context ctx, std::string key) {
    auto self = impl_;
    const auto started = Clock::now();
    if (auto ec = validate_key(key)) {
        self->report(Op::remove, started, ec);
        co_return Result<bool>(boost::system::in_place_error, ec);
    }
    Request r;
    auto call = std::make_shared<Call>(1);
    r.call = call;
    r.kind = Kind::remove;
    r.key = std::move(key);
    auto ec = co_await Impl::single(ctx, self, std::move(r));
    if (ec) {
        self->report(Op::remove, started, ec);
        co_return Result<bool>(boost::system::in_place_error, ec);
    }
    bool found = false;
    {
        std::lock_guard lock(call->mu_);
        found = call->found_;
    }
    self->report(Op::remove, started, {}, found);
    co_return found;
}

net::awaitable<Result<std::uint64_t>> Client::incr(Context ctx, std::string key,
                                                   std::uint64_t delta,
                                                   std::optional<std::uint64_t> initial, Ttl ttl) {
    return Impl::arith(std::move(ctx), impl_, true, std::move(key), delta, initial, ttl);
}

net::awaitable<Result<std::uint64_t>> Client::decr(Context ctx, std::string key,
                                                   std::uint64_t delta,
                                                   std::optional<std::uint64_t> initial, Ttl ttl) {
    return Impl::arith(std::move(ctx), impl_, false, std::move(key), delta, initial, ttl);
}

net::awaitable<Result<bool>> Client::touch(Context ctx, std::string key, Ttl ttl) {
    auto self = impl_;
    const auto started = Clock::now();
    if (auto ec = validate_key(key)) {
        self->report(Op::touch, started, ec);
        co_return Result<bool>(boost::system::in_place_error, ec);
    }
    Request r;
    auto call = std::make_shared<Call>(1);
    r.call = call;
    r.kind = Kind::touch;
    r.key = std::move(key);
    r.ttl = ttl.count();
    auto ec = co_await Impl::single(ctx, self, std::move(r));
    if (ec) {
        self->report(Op::touch, started, ec);
        co_return Result<bool>(boost::system::in_place_error, ec);
    }
    bool found = false;
    {
        std::lock_guard lock(call->mu_);
        found = call->found_;
    }
    self->report(Op::touch, started, {}, found);
    co_return found;
}

net::awaitable<Result<std::string>> Client::version(Context ctx, std::size_t server) {
    auto self = impl_;
    const auto started = Clock::now();
    Request r;
    auto call = std::make_shared<Call>(1);
    r.call = call;
    r.kind = Kind::version;
    auto ec = co_await Impl::to_server(ctx, self, server, std::move(r));
    self->report(Op::version, started, ec);
    if (ec) co_return ec;
    std::lock_guard lock(call->mu_);
    co_return call->text_;
}

net::awaitable<Result<std::chrono::nanoseconds>> Client::ping(Context ctx, std::size_t server) {
    auto self = impl_;
    const auto started = Clock::now();
    Request r;
    r.call = std::make_shared<Call>(1);
    r.kind = Kind::noop;
    auto ec = co_await Impl::to_server(ctx, self, server, std::move(r));
    self->report(Op::ping, started, ec);
    if (ec) co_return ec;
    co_return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started);
}

const std::vector<ServerAddress>& Client::servers() const noexcept {
    return impl_->cfg_.servers;
}

const ClientConfig& Client::config() const noexcept {
    return impl_->cfg_;
}

std::vector<ServerStatus> Client::status() const {
    std::vector<ServerStatus> out;
    for (const auto& s : impl_->servers_) {
        out.push_back(ServerStatus{s->index, s->addr.label(), s->addr.weight, s->alive.load(),
                                   s->n_connected.load(), s->n_connecting.load(),
                                   s->n_disconnected.load()});
    }
    return out;
}

Result<std::size_t> Client::server_for(std::string_view key) const {
    if (auto ec = validate_key(key)) return ec;
    return impl_->route(key);
}

}  // namespace reqctx::memcache
