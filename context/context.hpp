#pragma once

// Go's context.Context for C++: a cheap, copyable, thread-safe handle to an immutable node in a
// tree of contexts. Pass it by value as the first parameter of every function that waits, does
// I/O or can be cancelled; never store it in a struct, a global or a thread_local.

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
}

template <class T>
class Key;

// A read-only view of a context. Copying it copies a shared_ptr; err() and done() are one atomic
// load and touch no shared global state.
class Context {
public:
    // Empty until the context is done; then canceled or deadline_exceeded, never changing again.
    std::error_code err() const noexcept;
    bool done() const noexcept { return static_cast<bool>(err()); }

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

// Number of contexts alive in the process (derived ones; roots excluded). Cheap to read.
std::int64_t live_contexts() noexcept;

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

namespace detail {
// Stores one value of type T in a new node under parent (type-erased storage lives in context.cpp).
Context with_value_erased(Context parent, const void* key, std::shared_ptr<const void> value);
}  // namespace detail

template <class T, class U>
Context with_value(Context parent, const Key<T>& key, U&& value) {
    static_assert(std::is_constructible_v<T, U&&>, "value does not convert to the key's type");
    return detail::with_value_erased(std::move(parent), &key,
                                     std::make_shared<const T>(std::forward<U>(value)));
}

template <class T>
const T* Context::value(const Key<T>& key) const noexcept {
    return static_cast<const T*>(find_value(&key));
}

}  // namespace reqctx
