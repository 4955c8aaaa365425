#pragma once

// Go's context.Context for C++: a cheap, copyable, thread-safe handle to an immutable node in a
// tree of contexts. Pass it by value as the first parameter of every function that waits, does
// I/O or can be cancelled; never store it in a struct, a global or a thread_local.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace reqctx {

// Errors a context reports through err(): exactly one of these once it is done.
enum class ContextErrc {
    canceled = 1,
    deadline_exceeded = 2,
};

const std::error_category& context_category() noexcept;
std::error_code make_error_code(ContextErrc e) noexcept;

}  // namespace reqctx

template <>
struct std::is_error_code_enum<reqctx::ContextErrc> : std::true_type {};

namespace reqctx {

using Clock = std::chrono::steady_clock;

namespace detail {
class Node;
class CancelNode;
struct DoneListener;
}  // namespace detail

template <class T>
class Key;

// A read-only view of a context. Copying it copies a shared_ptr; err() and done() are one atomic
// load and touch no shared global state.
class Context {
public:
    // Empty until the context is done; then canceled or deadline_exceeded, never changing again.
    std::error_code err() const noexcept;
    bool done() const noexcept;

    // Set once by the first cancellation of this context or an ancestor: the cause given to the
    // cancel handle (or the timer's cause), else equal to err(). Empty before.
    std::error_code cause() const;

    // The effective deadline (the earliest of this context and its ancestors), if any.
    std::optional<Clock::time_point> deadline() const noexcept;

    // The innermost value stored under key, or nullptr. The pointee lives as long as any context
    // that can see it.
    template <class T>
    const T* value(const Key<T>& key) const noexcept;

    // "background", "todo", or the kind of the derivation ("with_cancel", ...); for debugging.
    std::string_view name() const noexcept;

    // Two handles are equal when they refer to the same node.
    friend bool operator==(const Context&, const Context&) noexcept = default;

private:
    friend class detail::Node;
    friend struct ContextAccess;
    explicit Context(std::shared_ptr<const detail::Node> node) noexcept : node_(std::move(node)) {}
    const void* find_value(const void* key) const noexcept;

    std::shared_ptr<const detail::Node> node_;
};

namespace detail {

enum class Kind : std::uint8_t {
    background,
    todo,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_timeout,
    with_value,
    without_cancel,
    event,
};

inline constexpr Clock::time_point kNoDeadline = Clock::time_point::max();
// The state of contexts that can never be done.
inline const std::atomic<int> kNeverDoneState{0};

// What every node shares, so that err()/done() inline to two loads. Immutable once built;
// cancellable nodes (context.cpp) and value nodes (below) derive from it.
class Node {
public:
    // src/state: the nearest cancellable node (or null) and its error state (or kNeverDoneState).
    Node(Kind kind, std::shared_ptr<const Node>&& parent, const CancelNode* src,
         const std::atomic<int>* state, Clock::time_point deadline) noexcept;
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    static std::shared_ptr<const Node> take(Context&& c) noexcept;
    static Context wrap(std::shared_ptr<const Node> n) noexcept;

    std::shared_ptr<const Node> parent_;
    const std::atomic<int>* err_state_;
    const CancelNode* src_;
    Clock::time_point deadline_;
    const void* key_ = nullptr;    // non-null for value nodes
    const void* value_ = nullptr;  // the value, stored inline in the derived node
    Kind kind_;
    const char* event_name_ = nullptr;
};

// A value node: the value lives inline (one allocation per with_value).
template <class T>
class ValueNode final : public Node {
public:
    template <class U>
    ValueNode(std::shared_ptr<const Node>&& parent, const void* key, U&& v)
        : Node(Kind::with_value, std::move(parent), parent->src_, parent->err_state_,
               parent->deadline_),
          val_(std::forward<U>(v)) {
        key_ = key;
        value_ = &val_;
    }

private:
    const T val_;
};

// Never null: a moved-from Context counts as background().
std::shared_ptr<const Node> parent_or_background(Context&& c) noexcept;

inline std::shared_ptr<const Node> Node::take(Context&& c) noexcept {
    return std::move(c.node_);
}
inline Context Node::wrap(std::shared_ptr<const Node> n) noexcept {
    return Context(std::move(n));
}

}  // namespace detail

inline std::error_code Context::err() const noexcept {
    int e = node_ ? node_->err_state_->load(std::memory_order_acquire) : 0;
    return e ? std::error_code(e, context_category()) : std::error_code();
}

inline bool Context::done() const noexcept {
    return node_ && node_->err_state_->load(std::memory_order_acquire) != 0;
}

// Cancels the context it was returned with. RAII: destroying a handle that has not been
// cancelled cancels, so a forgotten cancel cannot leak a subtree. Cancel is idempotent,
// thread-safe and does not wait for work to stop. Move-only.
class CancelHandle {
public:
    CancelHandle() noexcept = default;
    CancelHandle(CancelHandle&& other) noexcept = default;
    CancelHandle& operator=(CancelHandle&& other) noexcept;
    CancelHandle(const CancelHandle&) = delete;
    CancelHandle& operator=(const CancelHandle&) = delete;
    ~CancelHandle();

    // err() becomes canceled; cause() becomes `cause` (or canceled when none is given).
    void cancel() noexcept;
    void cancel(std::error_code cause) noexcept;
    void operator()() noexcept { cancel(); }

private:
    friend struct ContextAccess;
    explicit CancelHandle(std::shared_ptr<detail::Node> node) noexcept : node_(std::move(node)) {}
    std::shared_ptr<detail::Node> node_;
};

// Roots. background() belongs in main() and tests only; todo() marks code not yet wired up.
Context background() noexcept;
Context todo() noexcept;

// Derivations. `auto [child, cancel] = with_cancel(ctx);`
std::pair<Context, CancelHandle> with_cancel(Context parent);
// Same handle type: cancel(cause) records the cause. Kept for readers who know Go's API.
std::pair<Context, CancelHandle> with_cancel_cause(Context parent);

// The deadline is never later than the parent's; one already past gives a context born with
// deadline_exceeded. `cause` is recorded only when the deadline is what cancels the context.
std::pair<Context, CancelHandle> with_deadline(Context parent, Clock::time_point deadline);
std::pair<Context, CancelHandle> with_deadline_cause(Context parent, Clock::time_point deadline,
                                                     std::error_code cause);
std::pair<Context, CancelHandle> with_timeout(Context parent, Clock::duration timeout);
std::pair<Context, CancelHandle> with_timeout_cause(Context parent, Clock::duration timeout,
                                                    std::error_code cause);

// Keeps the parent's values; drops its cancellation, deadline and cause. For work that must
// outlive the request that started it (background subscribers).
Context without_cancel(Context parent);

// Number of contexts alive in the process (derived ones; roots excluded). Cheap to read: a sum of
// per-thread shards, so creating contexts never contends on one cache line.
std::int64_t live_contexts() noexcept;

namespace detail {
// Building block for the Asio integration and the tools in context/ (not for application code):
// a callback fired once when a context becomes done. `fire` runs under the context's internal
// lock, possibly on the cancelling thread or the deadline thread: it may only post or notify;
// it must not run user code, take other locks that are held while (de)registering, or drop the
// last reference to a context.
struct DoneListener {
    using FireFn = void (*)(DoneListener* self, std::error_code err,
                            std::error_code cause) noexcept;
    explicit DoneListener(FireFn f) noexcept : fire(f) {}
    FireFn fire;
    // Guarded by the owning node's lock.
    DoneListener* prev = nullptr;
    DoneListener* next = nullptr;
    bool linked = false;
    void* owner = nullptr;  // set by add_listener, immutable afterwards
};
enum class Listen { registered, already_done, never };
// `never`: ctx can never be done (no cancellable ancestor), nothing registered. The caller keeps
// a copy of ctx alive while the listener may be registered.
Listen add_listener(const Context& ctx, DoneListener* listener) noexcept;
// Returns true when the listener was unlinked before firing. After it returns, fire has either
// completed or will never run.
bool remove_listener(DoneListener* listener) noexcept;
// A fresh cancellable root (never cancelled except by its handle), for internal events.
std::pair<Context, CancelHandle> make_event(std::string_view name);
// A view of the context a handle cancels (e.g. a task group's own context).
Context context_of(const CancelHandle& handle) noexcept;
}  // namespace detail

// ---- Typed values -------------------------------------------------------------------------

// A type may opt out of being stored in a context by declaring
//     using not_request_scoped = void;
// Clients, pools, loggers and registries do: they outlive requests and must be passed
// explicitly (tip 5). with_value also refuses pointers, references, smart pointers and
// non-copyable types at compile time.
template <class T, class = void>
struct is_request_scoped : std::true_type {};
template <class T>
struct is_request_scoped<T, std::void_t<typename T::not_request_scoped>> : std::false_type {};
// Smart pointers share or own something with a life of its own: not request-scoped.
template <class T>
struct is_request_scoped<std::shared_ptr<T>, void> : std::false_type {};
template <class T>
struct is_request_scoped<std::weak_ptr<T>, void> : std::false_type {};
template <class T, class D>
struct is_request_scoped<std::unique_ptr<T, D>, void> : std::false_type {};

template <class T>
inline constexpr bool is_request_scoped_v =
    is_request_scoped<T>::value && !std::is_pointer_v<T> && !std::is_reference_v<T> &&
    std::is_copy_constructible_v<T> && std::is_same_v<T, std::remove_cv_t<T>>;

// A typed key. Identity is the key object (compare Go's unexported key types); the value type is
// the template argument, so lookups need no casts. Define keys as `inline const Key<T> kX{"x"};`.
template <class T>
class Key {
    static_assert(is_request_scoped_v<T>,
                  "only request-scoped values belong in a context: pass clients, pools and "
                  "loggers explicitly");

public:
    explicit constexpr Key(std::string_view name) noexcept : name_(name) {}
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;
    constexpr std::string_view name() const noexcept { return name_; }

private:
    std::string_view name_;
};

template <class T, class U>
Context with_value(Context parent, const Key<T>& key, U&& value) {
    static_assert(std::is_constructible_v<T, U&&>, "value does not convert to the key's type");
    return detail::Node::wrap(std::make_shared<detail::ValueNode<T>>(
        detail::parent_or_background(std::move(parent)), &key, std::forward<U>(value)));
}

template <class T>
const T* Context::value(const Key<T>& key) const noexcept {
    return static_cast<const T*>(find_value(&key));
}

}  // namespace reqctx
