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

// A read-only view of a context. Copying it adds a reference to the node (none for background()
// and todo()); err() and done() are one atomic load and touch no shared global state.
class Context {
public:
    Context(const Context& other) noexcept;
    Context(Context&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    Context& operator=(const Context& other) noexcept;
    Context& operator=(Context&& other) noexcept;
    ~Context();

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
    // Adopts one reference to `node` (null: behaves as background()).
    explicit Context(const detail::Node* node) noexcept : node_(node) {}
    const void* find_value(const void* key) const noexcept;

    const detail::Node* node_;
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

class Node;
// c's node with c's reference; never null: a moved-from Context counts as background().
const Node* parent_or_background(Context&& c) noexcept;

// What every node shares, so that err()/done() inline to two loads. Immutable once built;
// cancellable nodes (context.cpp) and value nodes (below) derive from it. Nodes are reference
// counted intrusively: every Context, CancelHandle, child node and armed timer holds one count
// (roots are immortal and not counted); the last release destroys the node through its kind
// (no virtual functions: 48 bytes, so a cancellable node fits two cache lines).
class Node {
public:
    // Adopts one reference to `parent` (null for roots and events). src/state: the nearest
    // cancellable node (or null) and its error state (or kNeverDoneState). `refs`: the references
    // the creator hands out.
    Node(Kind kind, const Node* parent, const CancelNode* src, const std::atomic<int>* state,
         Clock::time_point deadline, std::uint32_t refs = 1) noexcept;
    ~Node() = default;  // destroy() releases the parent
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // The node c referred to, with c's reference (null when c was moved from).
    static const Node* take(Context&& c) noexcept;
    static Context wrap(const Node* adopted) noexcept;

    const Node* parent_;
    const std::atomic<int>* err_state_;
    const CancelNode* src_;
    Clock::time_point deadline_;
    // with_value: the Key object. Kind::event: its name (a character array, so it never equals
    // a key and lookups need no kind check). Otherwise null.
    const void* key_ = nullptr;
    mutable std::atomic<std::uint32_t> refs_;
    Kind kind_;
    bool immortal_;  // background() and todo(): never counted, never destroyed
};

// What a with_value node adds: the value (inline in ValueNode<T>) and how to delete it.
class ValueNodeBase : public Node {
public:
    using DeleteFn = void (*)(const ValueNodeBase*) noexcept;
    ValueNodeBase(const Node* parent, const void* key, DeleteFn del) noexcept
        : Node(Kind::with_value, parent, parent->src_, parent->err_state_, parent->deadline_),
          delete_(del) {
        key_ = key;
    }
    // Releases the parent only when a ValueNode's value constructor threw (destroy() detaches
    // the parent first).
    ~ValueNodeBase();

    const void* value_ = nullptr;
    DeleteFn delete_;
};

// Destroys n and releases its parent (iteratively, so a long chain does not recurse).
void destroy(const Node* n) noexcept;

inline void add_ref(const Node* n) noexcept {
    if (n && !n->immortal_) n->refs_.fetch_add(1, std::memory_order_relaxed);
}

// A count of 1 seen by a holder is the holder's own: nobody else can add one (every path that
// adds a reference already holds one), so the last release needs no read-modify-write.
inline void release(const Node* n) noexcept {
    if (n && !n->immortal_ &&
        (n->refs_.load(std::memory_order_acquire) == 1 ||
         n->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)) {
        destroy(n);
    }
}

// A value node: the value lives inline (one allocation per with_value).
template <class T>
class ValueNode final : public ValueNodeBase {
public:
    // Takes parent's reference only once the memory is allocated; if T's constructor throws,
    // ~ValueNodeBase gives it back.
    template <class U>
    ValueNode(Context&& parent, const void* key, U&& v)
        : ValueNode(parent_or_background(std::move(parent)), key, std::forward<U>(v)) {}

private:
    template <class U>
    ValueNode(const Node* parent, const void* key, U&& v)
        : ValueNodeBase(parent, key, &ValueNode::delete_self), val_(std::forward<U>(v)) {
        value_ = &val_;
    }
    static void delete_self(const ValueNodeBase* n) noexcept {
        delete static_cast<const ValueNode*>(n);
    }

    const T val_;
};

inline const Node* Node::take(Context&& c) noexcept {
    return std::exchange(c.node_, nullptr);
}
inline Context Node::wrap(const Node* adopted) noexcept {
    return Context(adopted);
}

}  // namespace detail

inline Context::Context(const Context& other) noexcept : node_(other.node_) {
    detail::add_ref(node_);
}
inline Context& Context::operator=(const Context& other) noexcept {
    detail::add_ref(other.node_);
    detail::release(std::exchange(node_, other.node_));
    return *this;
}
inline Context& Context::operator=(Context&& other) noexcept {
    if (this != &other) detail::release(std::exchange(node_, std::exchange(other.node_, nullptr)));
    return *this;
}
inline Context::~Context() {
    detail::release(node_);
}

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
    CancelHandle(CancelHandle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    CancelHandle& operator=(CancelHandle&& other) noexcept;
    CancelHandle(const CancelHandle&) = delete;
    CancelHandle& operator=(const CancelHandle&) = delete;
    ~CancelHandle() {
        if (node_) cancel_and_release(node_);
    }

    // err() becomes canceled; cause() becomes `cause` (or canceled when none is given).
    void cancel() noexcept;
    void cancel(std::error_code cause) noexcept;
    void operator()() noexcept { cancel(); }

private:
    friend struct ContextAccess;
    // Adopts one reference to node.
    explicit CancelHandle(detail::CancelNode* node) noexcept : node_(node) {}
    static void cancel_and_release(detail::CancelNode* n) noexcept;
    detail::CancelNode* node_ = nullptr;
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
    // Order: in a cancellable node, next..linked share the cache line with the node's state, so
    // a parent's cascade touches one line per child.
    DoneListener* prev = nullptr;  // guarded by the owning node's lock
    void* owner = nullptr;         // set by add_listener, immutable afterwards
    DoneListener* next = nullptr;  // guarded by the owning node's lock
    FireFn fire;
    bool linked = false;  // guarded by the owner's lock; last: a cancellable node packs its flags
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
    // C++17 sequences the allocation before the constructor takes parent's reference.
    return detail::Node::wrap(
        new detail::ValueNode<T>(std::move(parent), &key, std::forward<U>(value)));
}

template <class T>
const T* Context::value(const Key<T>& key) const noexcept {
    return static_cast<const T*>(find_value(&key));
}

}  // namespace reqctx
