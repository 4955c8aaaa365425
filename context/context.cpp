#include "context/context.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reqctx {

// ---- Errors --------------------------------------------------------------------------------

namespace {

class ContextCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "reqctx.context"; }
    std::string message(int ev) const override {
        switch (static_cast<ContextErrc>(ev)) {
            case ContextErrc::canceled:
                return "context canceled";
            case ContextErrc::deadline_exceeded:
                return "context deadline exceeded";
        }
        return "unknown context error";
    }
};

// Constant-initialised: err() never pays for a function-local static guard.
constinit const ContextCategory kCategory{};

}  // namespace

const std::error_category& context_category() noexcept {
    return kCategory;
}

std::error_code make_error_code(ContextErrc e) noexcept {
    return {static_cast<int>(e), kCategory};
}

// ---- Live counter: per-thread slots summed on read ------------------------------------------

namespace {

constexpr std::size_t kSlots = 128;

struct alignas(64) Slot {
    std::atomic<std::int64_t> count{0};
    std::atomic<bool> claimed{false};
};

Slot g_slots[kSlots];
// Threads beyond kSlots share this one (read-modify-write there).
alignas(64) std::atomic<std::int64_t> g_overflow{0};

// Each thread owns one slot exclusively while it lives, so updates are a plain load and store
// (no locked instruction). On thread exit the slot, count included, is handed to the next thread.
struct SlotOwner {
    Slot* slot = nullptr;
    SlotOwner() noexcept {
        for (auto& s : g_slots) {
            bool expected = false;
            if (!s.claimed.load(std::memory_order_relaxed) &&
                s.claimed.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
                slot = &s;
                return;
            }
        }
    }
    ~SlotOwner() {
        if (slot) slot->claimed.store(false, std::memory_order_release);
    }
    void add(std::int64_t d) noexcept {
        if (slot) {
            slot->count.store(slot->count.load(std::memory_order_relaxed) + d,
                              std::memory_order_relaxed);
        } else {
            g_overflow.fetch_add(d, std::memory_order_relaxed);
        }
    }
};

void count_live(std::int64_t d) noexcept {
    thread_local SlotOwner owner;
    owner.add(d);
}

// A tiny test-and-test-and-set lock: critical sections here are a few pointer writes (or a
// cascade of such), an uncontended acquire is one exchange and the release one plain store.
class SpinLock {
public:
    void lock() noexcept {
        for (;;) {
            if (!flag_.exchange(true, std::memory_order_acquire)) return;
            int spins = 0;
            while (flag_.load(std::memory_order_relaxed)) {
                if (++spins > 64) {
                    std::this_thread::yield();
                    spins = 0;
                }
            }
        }
    }
    void unlock() noexcept { flag_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> flag_{false};
};

}  // namespace

std::int64_t live_contexts() noexcept {
    std::int64_t sum = g_overflow.load(std::memory_order_relaxed);
    for (const auto& s : g_slots) sum += s.count.load(std::memory_order_relaxed);
    return sum;
}

// ---- Nodes ---------------------------------------------------------------------------------

namespace detail {

Node::Node(Kind kind, std::shared_ptr<const Node>&& parent, const CancelNode* src,
           const std::atomic<int>* state, Clock::time_point deadline) noexcept
    : parent_(std::move(parent)), err_state_(state), src_(src), deadline_(deadline), kind_(kind) {
    if (parent_) count_live(1);
}

Node::~Node() {
    if (parent_) count_live(-1);
}

class CancelNode final : public Node, public DoneListener {
public:
    CancelNode(Kind kind, std::shared_ptr<const Node> parent, Clock::time_point deadline)
        : Node(kind, std::move(parent), this, &err_, deadline),
          DoneListener(&CancelNode::on_parent_done) {}
    ~CancelNode();

    std::error_code err() const noexcept {
        int e = err_.load(std::memory_order_acquire);
        return e ? std::error_code(e, kCategory) : std::error_code();
    }

    // Cancels this node and its descendants; then unlinks from the parent and the timer.
    void cancel_self(ContextErrc err, std::error_code cause) noexcept;

    // Sets the state and fires listeners; called with no lock or with an ancestor's lock held
    // (from_parent: the parent has already unlinked us). Returns whether we are still linked in
    // the parent.
    bool cancel_locked_cascade(std::error_code err, std::error_code cause,
                               bool from_parent) noexcept;

    static void on_parent_done(DoneListener* self, std::error_code err,
                               std::error_code cause) noexcept {
        static_cast<CancelNode*>(self)->cancel_locked_cascade(err, cause, true);
    }

    void unlink_from_parent() noexcept;

    mutable SpinLock lock_;
    bool parent_detached_ = false;        // guarded by lock_: the parent unlinked us
    std::atomic<bool> self_done_{false};  // cancel_self completed once: later calls are no-ops
    std::atomic<int> err_{0};
    std::error_code cause_;                // written before err_ is published
    DoneListener* head_ = nullptr;         // guarded by lock_
    CancelNode* registered_in_ = nullptr;  // immutable after construction
    std::error_code deadline_cause_;       // immutable after construction
    // Timer bookkeeping, guarded by the timer service's mutex.
    std::size_t heap_index_ = kNotInHeap;
    std::atomic<bool> armed_{false};
    std::weak_ptr<CancelNode> weak_self_;  // set when armed, for the timer thread

    static constexpr std::size_t kNotInHeap = std::numeric_limits<std::size_t>::max();
};

namespace {

// One lazily started process-wide thread with a heap of deadlines. Entries are removed when
// their context is cancelled or destroyed first, so a long-lived parent with short-lived
// timeout children does not accumulate entries. The service object is intentionally never
// destroyed (contexts may die during static destruction); its thread is joined at exit.
class TimerService {
public:
    static TimerService& instance() {
        static TimerService* service = [] {
            auto* s = new TimerService();
            std::atexit(&TimerService::stop_at_exit);
            return s;
        }();
        return *service;
    }

    void arm(CancelNode* node) {
        std::unique_lock lk(mu_);
        if (stopped_) return;
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
        node->heap_index_ = heap_.size();
        heap_.push_back(node);
        sift_up(node->heap_index_);
        node->armed_.store(true, std::memory_order_release);
        if (node->heap_index_ == 0 && node->deadline_ < sleeping_until_) {
            sleeping_until_ = node->deadline_;
            lk.unlock();
            cv_.notify_one();
        }
    }

    void disarm(CancelNode* node) noexcept {
        if (!node->armed_.load(std::memory_order_acquire)) return;
        std::lock_guard lk(mu_);
        if (node->heap_index_ != CancelNode::kNotInHeap) erase(node->heap_index_);
        node->armed_.store(false, std::memory_order_relaxed);
    }

private:
    TimerService() = default;

    static void stop_at_exit() {
        auto& s = instance();
        std::thread t;
        {
            std::lock_guard lk(s.mu_);
            s.stopped_ = true;
            t = std::move(s.thread_);
        }
        s.cv_.notify_one();
        if (t.joinable()) t.join();
    }

    void run() {
        std::unique_lock lk(mu_);
        while (!stopped_) {
            if (heap_.empty()) {
                sleeping_until_ = kNoDeadline;
                cv_.wait(lk);
                continue;
            }
            CancelNode* top = heap_.front();
            auto now = Clock::now();
            if (top->deadline_ > now) {
                // A copy: the node may be destroyed while we wait (the mutex is released).
                const Clock::time_point until = top->deadline_;
                sleeping_until_ = until;
                cv_.wait_until(lk, until);
                continue;
            }
            erase(0);
            // A node whose destructor is waiting for mu_ has no owners left: lock() fails.
            std::shared_ptr<CancelNode> node = top->weak_self_.lock();
            if (!node) continue;
            node->armed_.store(false, std::memory_order_relaxed);
            lk.unlock();
            node->cancel_self(ContextErrc::deadline_exceeded, node->deadline_cause_);
            node.reset();  // may destroy the node, which may take mu_
            lk.lock();
        }
    }

    void swap_at(std::size_t a, std::size_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        heap_[a]->heap_index_ = a;
        heap_[b]->heap_index_ = b;
    }
    void sift_up(std::size_t i) noexcept {
        while (i > 0) {
            std::size_t p = (i - 1) / 2;
            if (!(heap_[i]->deadline_ < heap_[p]->deadline_)) break;
            swap_at(i, p);
            i = p;
        }
    }
    void sift_down(std::size_t i) noexcept {
        for (;;) {
            std::size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < heap_.size() && heap_[l]->deadline_ < heap_[m]->deadline_) m = l;
            if (r < heap_.size() && heap_[r]->deadline_ < heap_[m]->deadline_) m = r;
            if (m == i) return;
            swap_at(i, m);
            i = m;
        }
    }
    void erase(std::size_t i) noexcept {
        CancelNode* victim = heap_[i];
        std::size_t last = heap_.size() - 1;
        if (i != last) {
            swap_at(i, last);
            heap_.pop_back();
            sift_down(i);
            sift_up(i);
        } else {
            heap_.pop_back();
        }
        victim->heap_index_ = CancelNode::kNotInHeap;
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<CancelNode*> heap_;
    Clock::time_point sleeping_until_ = kNoDeadline;
    std::thread thread_;
    bool stopped_ = false;
};

}  // namespace

CancelNode::~CancelNode() {
    // Normally the handle's cancel already unlinked us; this covers the remaining paths.
    if (self_done_.load(std::memory_order_acquire)) return;
    if (armed_.load(std::memory_order_acquire)) TimerService::instance().disarm(this);
    if (registered_in_) {
        lock_.lock();
        bool detached = parent_detached_;
        lock_.unlock();
        if (!detached) unlink_from_parent();
    }
}

bool CancelNode::cancel_locked_cascade(std::error_code err, std::error_code cause,
                                       bool from_parent) noexcept {
    lock_.lock();
    if (from_parent) parent_detached_ = true;
    bool linked_in_parent = registered_in_ != nullptr && !parent_detached_;
    if (err_.load(std::memory_order_relaxed) != 0) {
        lock_.unlock();
        return linked_in_parent;
    }
    cause_ = cause ? cause : err;
    err_.store(err.value(), std::memory_order_release);
    DoneListener* l = head_;
    head_ = nullptr;
    while (l) {
        DoneListener* following = l->next;
        l->linked = false;
        l->prev = l->next = nullptr;
        // Fired under our lock: a listener cannot be unlinked (and freed) meanwhile.
        l->fire(l, err, cause_);
        l = following;
    }
    lock_.unlock();
    return linked_in_parent;
}

void CancelNode::unlink_from_parent() noexcept {
    CancelNode* p = registered_in_;
    p->lock_.lock();
    if (linked) {
        if (prev)
            prev->next = next;
        else
            p->head_ = next;
        if (next) next->prev = prev;
        prev = next = nullptr;
        linked = false;
    }
    p->lock_.unlock();
}

void CancelNode::cancel_self(ContextErrc err, std::error_code cause) noexcept {
    if (self_done_.load(std::memory_order_acquire)) return;
    if (cancel_locked_cascade(make_error_code(err), cause, false)) unlink_from_parent();
    if (armed_.load(std::memory_order_acquire)) TimerService::instance().disarm(this);
    self_done_.store(true, std::memory_order_release);
}

Listen add_listener(const Context& ctx, DoneListener* listener) noexcept;
bool remove_listener(DoneListener* listener) noexcept;

}  // namespace detail

struct ContextAccess {
    static const detail::Node* node(const Context& c) noexcept { return c.node_.get(); }
    static Context make(std::shared_ptr<const detail::Node> n) noexcept {
        return Context(std::move(n));
    }
    static CancelHandle make_handle(std::shared_ptr<detail::Node> n) noexcept {
        return CancelHandle(std::move(n));
    }
    static const std::shared_ptr<detail::Node>& handle_node(const CancelHandle& h) noexcept {
        return h.node_;
    }
    static std::shared_ptr<const detail::Node> take(Context&& c) noexcept {
        return detail::Node::take(std::move(c));
    }
};

namespace {

using detail::CancelNode;
using detail::Kind;
using detail::Node;

// Roots are static and handed out as non-owning shared_ptrs (aliasing an empty owner): copying
// background() touches no reference count, so deriving from it contends on nothing.
std::shared_ptr<const Node> background_node() noexcept {
    static const Node n(Kind::background, nullptr, nullptr, &detail::kNeverDoneState,
                        detail::kNoDeadline);
    return std::shared_ptr<const Node>(std::shared_ptr<const Node>(), &n);
}
std::shared_ptr<const Node> todo_node() noexcept {
    static const Node n(Kind::todo, nullptr, nullptr, &detail::kNeverDoneState,
                        detail::kNoDeadline);
    return std::shared_ptr<const Node>(std::shared_ptr<const Node>(), &n);
}

// Makes a cancellable child, linking it to the nearest cancellable ancestor (if any). A child of
// a done ancestor is born done with the ancestor's error and cause.
std::shared_ptr<CancelNode> make_cancel_node(Context parent, Kind kind,
                                             Clock::time_point deadline) {
    std::shared_ptr<const Node> p = ContextAccess::take(std::move(parent));
    if (!p) p = background_node();
    const CancelNode* src = p->src_;
    auto node = std::make_shared<CancelNode>(kind, std::move(p), deadline);
    if (src) {
        auto* anc = const_cast<CancelNode*>(src);
        anc->lock_.lock();
        int e = anc->err_.load(std::memory_order_relaxed);
        if (e == 0) {
            node->owner = anc;
            node->next = anc->head_;
            if (anc->head_) anc->head_->prev = node.get();
            anc->head_ = node.get();
            node->linked = true;
            node->registered_in_ = anc;
            anc->lock_.unlock();
        } else {
            std::error_code cause = anc->cause_;
            anc->lock_.unlock();
            node->cause_ = cause;
            node->err_.store(e, std::memory_order_release);
        }
    }
    return node;
}

std::pair<Context, CancelHandle> make_pair_from(std::shared_ptr<CancelNode> node) {
    std::shared_ptr<Node> h = node;
    return {ContextAccess::make(std::move(node)), ContextAccess::make_handle(std::move(h))};
}

std::pair<Context, CancelHandle> deadline_impl(Context parent, Clock::time_point d,
                                               std::error_code cause, Kind kind) {
    const Node* pn = ContextAccess::node(parent);
    Clock::time_point parent_deadline = pn ? pn->deadline_ : detail::kNoDeadline;
    if (parent_deadline <= d) {
        // The parent's deadline comes first: a plain cancellable child (as Go does).
        return make_pair_from(make_cancel_node(std::move(parent), kind, parent_deadline));
    }
    auto node = make_cancel_node(std::move(parent), kind, d);
    node->deadline_cause_ = cause;
    if (node->err_.load(std::memory_order_relaxed) == 0) {
        if (d <= Clock::now()) {
            node->cancel_self(ContextErrc::deadline_exceeded, cause);
        } else {
            node->weak_self_ = node;
            detail::TimerService::instance().arm(node.get());
        }
    }
    return make_pair_from(std::move(node));
}

}  // namespace

// ---- Context ---------------------------------------------------------------------------------

std::error_code Context::cause() const {
    const Node* n = node_.get();
    if (!n || !n->src_) return {};
    const CancelNode* s = n->src_;
    if (s->err_.load(std::memory_order_acquire) == 0) return {};
    return s->cause_;
}

std::optional<Clock::time_point> Context::deadline() const noexcept {
    const Node* n = node_.get();
    if (!n || n->deadline_ == detail::kNoDeadline) return std::nullopt;
    return n->deadline_;
}

std::string_view Context::name() const noexcept {
    const Node* n = node_.get();
    if (!n) return "background";
    switch (n->kind_) {
        case Kind::background:
            return "background";
        case Kind::todo:
            return "todo";
        case Kind::with_cancel:
            return "with_cancel";
        case Kind::with_cancel_cause:
            return "with_cancel_cause";
        case Kind::with_deadline:
            return "with_deadline";
        case Kind::with_timeout:
            return "with_timeout";
        case Kind::with_value:
            return "with_value";
        case Kind::without_cancel:
            return "without_cancel";
        case Kind::event:
            return n->event_name_ ? n->event_name_ : "event";
    }
    return "unknown";
}

const void* Context::find_value(const void* key) const noexcept {
    for (const Node* n = node_.get(); n; n = n->parent_.get()) {
        if (n->key_ == key) return n->value_;
    }
    return nullptr;
}

// ---- CancelHandle ----------------------------------------------------------------------------

CancelHandle& CancelHandle::operator=(CancelHandle&& other) noexcept {
    if (this != &other) {
        cancel();
        node_ = std::move(other.node_);
    }
    return *this;
}

CancelHandle::~CancelHandle() {
    cancel();
}

void CancelHandle::cancel() noexcept {
    cancel(std::error_code());
}

void CancelHandle::cancel(std::error_code cause) noexcept {
    if (node_) static_cast<CancelNode*>(node_.get())->cancel_self(ContextErrc::canceled, cause);
}

// ---- Roots and derivations -------------------------------------------------------------------

Context background() noexcept {
    return ContextAccess::make(background_node());
}
Context todo() noexcept {
    return ContextAccess::make(todo_node());
}

std::pair<Context, CancelHandle> with_cancel(Context parent) {
    const Node* pn = ContextAccess::node(parent);
    Clock::time_point d = pn ? pn->deadline_ : detail::kNoDeadline;
    return make_pair_from(make_cancel_node(std::move(parent), Kind::with_cancel, d));
}

std::pair<Context, CancelHandle> with_cancel_cause(Context parent) {
    const Node* pn = ContextAccess::node(parent);
    Clock::time_point d = pn ? pn->deadline_ : detail::kNoDeadline;
    return make_pair_from(make_cancel_node(std::move(parent), Kind::with_cancel_cause, d));
}

std::pair<Context, CancelHandle> with_deadline(Context parent, Clock::time_point deadline) {
    return deadline_impl(std::move(parent), deadline, {}, Kind::with_deadline);
}

std::pair<Context, CancelHandle> with_deadline_cause(Context parent, Clock::time_point deadline,
                                                     std::error_code cause) {
    return deadline_impl(std::move(parent), deadline, cause, Kind::with_deadline);
}

std::pair<Context, CancelHandle> with_timeout(Context parent, Clock::duration timeout) {
    return deadline_impl(std::move(parent), Clock::now() + timeout, {}, Kind::with_timeout);
}

std::pair<Context, CancelHandle> with_timeout_cause(Context parent, Clock::duration timeout,
                                                    std::error_code cause) {
    return deadline_impl(std::move(parent), Clock::now() + timeout, cause, Kind::with_timeout);
}

Context without_cancel(Context parent) {
    std::shared_ptr<const Node> p = ContextAccess::take(std::move(parent));
    if (!p) p = background_node();
    return ContextAccess::make(std::make_shared<const Node>(Kind::without_cancel, std::move(p),
                                                            nullptr, &detail::kNeverDoneState,
                                                            detail::kNoDeadline));
}

namespace detail {

std::shared_ptr<const Node> parent_or_background(Context&& c) noexcept {
    std::shared_ptr<const Node> p = ContextAccess::take(std::move(c));
    if (!p) p = background_node();
    return p;
}

Listen add_listener(const Context& ctx, DoneListener* listener) noexcept {
    const Node* n = ContextAccess::node(ctx);
    if (!n || !n->src_) return Listen::never;
    auto* src = const_cast<CancelNode*>(n->src_);
    src->lock_.lock();
    if (src->err_.load(std::memory_order_relaxed) != 0) {
        src->lock_.unlock();
        return Listen::already_done;
    }
    listener->owner = src;
    listener->prev = nullptr;
    listener->next = src->head_;
    if (src->head_) src->head_->prev = listener;
    src->head_ = listener;
    listener->linked = true;
    src->lock_.unlock();
    return Listen::registered;
}

bool remove_listener(DoneListener* listener) noexcept {
    auto* src = static_cast<CancelNode*>(listener->owner);
    if (!src) return false;
    bool removed = false;
    src->lock_.lock();
    if (listener->linked) {
        if (listener->prev)
            listener->prev->next = listener->next;
        else
            src->head_ = listener->next;
        if (listener->next) listener->next->prev = listener->prev;
        listener->prev = listener->next = nullptr;
        listener->linked = false;
        removed = true;
    }
    src->lock_.unlock();
    return removed;
}

std::pair<Context, CancelHandle> make_event(std::string_view name) {
    auto node = std::make_shared<CancelNode>(Kind::event, nullptr, kNoDeadline);
    node->event_name_ = name.data();
    return make_pair_from(std::move(node));
}

Context context_of(const CancelHandle& handle) noexcept {
    return ContextAccess::make(ContextAccess::handle_node(handle));
}

}  // namespace detail

}  // namespace reqctx
