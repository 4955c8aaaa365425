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
// The pointer is a constant-initialised thread_local (no TLS guard on the hot path); the slot is
// claimed on first use and given back by a thread_local registered then.
constinit thread_local Slot* t_slot = nullptr;
constinit thread_local bool t_use_overflow = false;  // no slot was free, or the thread is exiting

struct SlotRelease {
    ~SlotRelease() {
        if (t_slot) t_slot->claimed.store(false, std::memory_order_release);
        t_slot = nullptr;
        t_use_overflow = true;
    }
};

[[gnu::noinline]] Slot* claim_slot() noexcept {
    if (t_use_overflow) return nullptr;
    for (auto& s : g_slots) {
        bool expected = false;
        if (!s.claimed.load(std::memory_order_relaxed) &&
            s.claimed.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
            thread_local SlotRelease release;
            (void)release;
            t_slot = &s;
            return &s;
        }
    }
    t_use_overflow = true;
    return nullptr;
}

[[gnu::noinline]] void count_live_slow(std::int64_t d) noexcept {
    if (Slot* s = claim_slot()) {
        s->count.store(s->count.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
    } else {
        g_overflow.fetch_add(d, std::memory_order_relaxed);
    }
}

inline void count_live(std::int64_t d) noexcept {
    if (Slot* s = t_slot) [[likely]] {
        s->count.store(s->count.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
    } else {
        count_live_slow(d);
    }
}

// ---- Per-thread cache of cancellable-node blocks ---------------------------------------------

// Freed CancelNode blocks are kept on a bounded per-thread list and reused by the next node the
// thread creates, so a burst of children costs no malloc/free and no page faults from memory
// returned to the system and touched again. A block freed on another thread joins that thread's
// list (blocks are plain operator new memory; any thread may hold any block). Sanitizer builds
// bypass the cache so AddressSanitizer still sees every use after free.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kNodeCache = false;
#else
constexpr bool kNodeCache = true;
#endif
constexpr std::uint32_t kMaxCachedNodes = 2048;

struct FreeBlock {
    FreeBlock* next;
};
struct NodeCache {
    FreeBlock* head;
    // Free places left; 0 also before the first free (cleanup not registered yet) and once the
    // thread is exiting, so the fast paths test one field.
    std::uint32_t room;
    std::uint8_t state;  // 0: unused yet, 1: cleanup registered, 2: thread exiting
};
constinit thread_local NodeCache t_node_cache{nullptr, 0, 0};

// Blocks are cut 64-byte aligned out of plain operator new memory (so a node spans exactly two
// cache lines, and allocation counting in the benchmarks sees them); the raw pointer is kept
// just before the block.
constexpr std::size_t kNodeAlign = 64;
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 16);

void node_release_block(void* p) noexcept {
    ::operator delete(static_cast<void**>(p)[-1]);
}

struct NodeCacheCleanup {
    ~NodeCacheCleanup() {
        NodeCache& c = t_node_cache;
        c.state = 2;  // nodes freed later in this thread's exit go straight to operator delete
        c.room = 0;
        while (FreeBlock* b = c.head) {
            c.head = b->next;
            node_release_block(b);
        }
    }
};

[[gnu::noinline]] void* node_alloc_slow(std::size_t n) {
    // raw is 16-aligned, so the aligned block starts 16 to 64 bytes in.
    void* raw = ::operator new(n + kNodeAlign);
    auto a = (reinterpret_cast<std::uintptr_t>(raw) + sizeof(void*) + kNodeAlign - 1) &
             ~(kNodeAlign - 1);
    reinterpret_cast<void**>(a)[-1] = raw;
    return reinterpret_cast<void*>(a);
}

inline void* node_alloc(std::size_t n) {
    if constexpr (kNodeCache) {
        NodeCache& c = t_node_cache;
        // Only a registered, live cache holds blocks (see node_free).
        if (FreeBlock* b = c.head) [[likely]] {
            FreeBlock* next = b->next;
            c.head = next;
            ++c.room;
            // The next node of a burst will be built there: start fetching its two lines now,
            // so its stores do not stall the reference count and lock instructions that follow.
            if (next) {
                __builtin_prefetch(next, 1);
                __builtin_prefetch(reinterpret_cast<char*>(next) + kNodeAlign, 1);
            }
            return b;
        }
    }
    return node_alloc_slow(n);
}

inline void node_push(NodeCache& c, void* p) noexcept {
    auto* b = static_cast<FreeBlock*>(p);
    b->next = c.head;
    c.head = b;
    --c.room;
}

[[gnu::noinline]] void node_free_slow(void* p) noexcept {
    if constexpr (kNodeCache) {
        NodeCache& c = t_node_cache;
        if (c.state == 0) {
            thread_local NodeCacheCleanup cleanup;
            (void)cleanup;
            c.state = 1;
            c.room = kMaxCachedNodes;
            node_push(c, p);
            return;
        }
    }
    node_release_block(p);
}

inline void node_free(void* p) noexcept {
    if constexpr (kNodeCache) {
        NodeCache& c = t_node_cache;
        if (c.room != 0) [[likely]] {
            node_push(c, p);
            return;
        }
    }
    node_free_slow(p);
}

// A tiny test-and-test-and-set lock: critical sections here are a few pointer writes (or a
// cascade of such), an uncontended acquire is one compare-exchange and the release one plain
// store. Bit 1 ("listened") is sticky: set by the first acquire that adds a listener, so that
// a parent's cascade can tell, without taking the lock, whether a child may have any.
class SpinLock {
public:
    static constexpr std::uint8_t kLocked = 1;
    static constexpr std::uint8_t kListened = 2;

    void lock() noexcept { acquire(kLocked); }
    // Also marks the lock listened, in the same read-modify-write (a full barrier): callers
    // then read the node's state with a seq_cst load (see finish_batch).
    void lock_to_listen() noexcept { acquire(kLocked | kListened); }
    // Only the holder writes a locked word (failed compare-exchanges do not), so the release
    // keeps the listened bit with a plain store.
    void unlock() noexcept {
        flag_.store(flag_.load(std::memory_order_relaxed) & kListened, std::memory_order_release);
    }
    bool listened() const noexcept { return flag_.load(std::memory_order_relaxed) & kListened; }

private:
    void acquire(std::uint8_t bits) noexcept {
        std::uint8_t v = flag_.load(std::memory_order_relaxed);
        if (!(v & kLocked) && flag_.compare_exchange_strong(v, v | bits, std::memory_order_seq_cst,
                                                            std::memory_order_relaxed)) [[likely]] {
            return;
        }
        acquire_slow(bits);
    }
    [[gnu::noinline]] void acquire_slow(std::uint8_t bits) noexcept {
        std::uint8_t v = flag_.load(std::memory_order_relaxed);
        for (;;) {
            if (!(v & kLocked) &&
                flag_.compare_exchange_weak(v, v | bits, std::memory_order_seq_cst,
                                            std::memory_order_relaxed)) {
                return;
            }
            int spins = 0;
            while ((v = flag_.load(std::memory_order_relaxed)) & kLocked) {
                if (++spins > 64) {
                    std::this_thread::yield();
                    spins = 0;
                }
            }
        }
    }

    std::atomic<std::uint8_t> flag_{0};
};

}  // namespace

std::int64_t live_contexts() noexcept {
    std::int64_t sum = g_overflow.load(std::memory_order_relaxed);
    for (const auto& s : g_slots) sum += s.count.load(std::memory_order_relaxed);
    return sum;
}

// ---- Nodes ---------------------------------------------------------------------------------

namespace detail {

Node::Node(Kind kind, const Node* parent, const CancelNode* src, const std::atomic<int>* state,
           Clock::time_point deadline, std::uint32_t refs) noexcept
    : parent_(parent),
      err_state_(state),
      src_(src),
      deadline_(deadline),
      refs_(refs),
      kind_(kind),
      immortal_(kind == Kind::background || kind == Kind::todo) {
    if (parent_) count_live(1);
}

ValueNodeBase::~ValueNodeBase() {
    if (parent_) {
        count_live(-1);
        release(parent_);
    }
}

// An error code without std::error_code's default constructor (an out-of-line call into
// libstdc++), so that nodes and their hot paths never pay for an empty cause.
struct Code {
    int val = 0;
    const std::error_category* cat = nullptr;  // null: none

    static Code of(std::error_code e) noexcept {
        return e ? Code{e.value(), &e.category()} : Code{};
    }
    explicit operator bool() const noexcept { return cat != nullptr; }
};

class CancelNode final : public Node, public DoneListener {
public:
    // Born with two references: the Context and the CancelHandle it is returned with.
    CancelNode(Kind kind, const Node* parent, Clock::time_point deadline) noexcept
        : Node(kind, parent, this, &err_, deadline, 2), DoneListener(&CancelNode::on_parent_done) {}
    ~CancelNode() = default;  // destroy() unlinks first if need be

    // Blocks come from the per-thread cache, 64-byte aligned so a node spans two cache lines.
    static void* operator new(std::size_t n) { return node_alloc(n); }
    static void operator delete(void* p) noexcept { node_free(p); }

    // Cancels this node and its descendants; then unlinks from the parent and the timer. The
    // caller holds a reference. Once the node is done and out of its parent's list (the common
    // case for a handle whose parent was cancelled first) it is two loads and takes no lock.
    void cancel_self(ContextErrc err, Code cause) noexcept {
        // The parent's cascade holds no reference to us, so the caller may free the node right
        // after this returns: detached_ (release) is the cascade's last access to the node.
        if (!detached_.load(std::memory_order_acquire) || err_.load(std::memory_order_relaxed) == 0)
            [[unlikely]] {
            cancel_slow(err, cause);
        }
        if (armed_.load(std::memory_order_acquire)) [[unlikely]]
            disarm();
    }

    // A child node's fire function. The cascade recognises it and does the same inline, in
    // batches (fire_listeners); its body is node-specific, so no other listener shares it.
    static void on_parent_done(DoneListener* self, std::error_code err,
                               std::error_code cause) noexcept;

    void unlink_from_parent() noexcept;

    // Takes a linked listener (a child, or a waiter) out of this node's list; lock_ is held.
    void unlink_locked(DoneListener* l) noexcept {
        if (l->prev)
            l->prev->next = l->next;
        else
            head_ = l->next;
        if (l->next) l->next->prev = l->prev;
        l->prev = l->next = nullptr;
        l->linked = false;
    }

    // Context::cause() once err_ is set.
    std::error_code cause() const noexcept { return {cause_val_, *cause_cat_}; }
    void set_cause(Code c) noexcept {
        cause_val_ = c.val;
        cause_cat_ = c.cat;
    }
    Code deadline_cause() const noexcept { return {deadline_cause_val_, deadline_cause_cat_}; }
    void set_deadline_cause(Code c) noexcept {
        deadline_cause_val_ = c.val;
        deadline_cause_cat_ = c.cat;
    }

    // Fields after DoneListener's (its tail padding holds the flags): 128 bytes in all.
    // State rule: while a node is linked in its parent's list, its err_ and cause change only
    // under the parent's lock (the parent's cascade, or cancel_slow holding both locks), so the
    // cascade sets a linked child's state without the child's lock. The child's own listeners
    // are guarded by its own lock; adders mark it listened (lock_to_listen) and then read err_,
    // the cascade writes err_ and then reads the mark, with a full barrier on both sides, so one
    // of the two sees the other (see finish_batch).
    mutable SpinLock lock_;
    // Not (or no longer) in the parent's list of listeners; never reset once set. Stored last by
    // the parent's cascade (after err_), or under lock_ after unlinking; read without the lock
    // by cancel_self's fast path.
    std::atomic<bool> detached_{true};
    // While armed the timer holds a reference (heap_index_ is guarded by its mutex).
    std::atomic<bool> armed_{false};
    std::atomic<int> err_{0};
    DoneListener* head_ = nullptr;  // guarded by lock_
    // Written before err_ is published (and read only after), so not initialised.
    const std::error_category* cause_cat_;
    // Set (by deadline_impl) before the node can be armed or cancelled by its deadline.
    const std::error_category* deadline_cause_cat_;
    int cause_val_;
    int deadline_cause_val_;
    std::uint32_t heap_index_ = kNotInHeap;

    static constexpr std::uint32_t kNotInHeap = std::numeric_limits<std::uint32_t>::max();

    // Publishes err_ (with cause, never empty) and fires the listeners: the caller holds our
    // lock and err_ was 0.
    void publish_and_fire(int err, Code cause) noexcept {
        set_cause(cause);
        err_.store(err, std::memory_order_release);
        fire_listeners(err, cause);
    }
    // Empties the list (caller holds our lock, err_ is set), cancelling child nodes in batches.
    void fire_listeners(int err, Code cause) noexcept;

private:
    [[gnu::noinline]] void cancel_slow(ContextErrc err, Code cause) noexcept;
    [[gnu::noinline]] void disarm() noexcept;
};
static_assert(sizeof(CancelNode) == 2 * kNodeAlign, "a cancellable node spans two cache lines");

namespace {

// destroy() for any node: frees it, then releases its parent, up the chain.
[[gnu::noinline]] void destroy_chain(const Node* n) noexcept {
    for (;;) {
        auto* victim = const_cast<Node*>(n);
        const Node* parent = victim->parent_;
        switch (victim->kind_) {
            case Kind::with_value: {
                auto* v = static_cast<ValueNodeBase*>(victim);
                v->parent_ = nullptr;  // released below, not by ~ValueNodeBase
                v->delete_(v);
                break;
            }
            case Kind::without_cancel:
                delete victim;
                break;
            default: {
                auto* c = static_cast<CancelNode*>(victim);
                // Every handle cancels (and so unlinks) before giving up its reference, and an
                // armed node is referenced by the timer, so this is a check; unlink_from_parent
                // copes with a parent cascading concurrently.
                if (!c->detached_.load(std::memory_order_acquire)) c->unlink_from_parent();
                delete c;
                break;
            }
        }
        if (!parent) return;  // an event
        count_live(-1);
        if (parent->immortal_ || (parent->refs_.load(std::memory_order_acquire) != 1 &&
                                  parent->refs_.fetch_sub(1, std::memory_order_acq_rel) != 1)) {
            return;
        }
        n = parent;
    }
}

constexpr bool is_cancel_kind(Kind k) noexcept {
    return static_cast<unsigned>(k) - static_cast<unsigned>(Kind::with_cancel) <=
           static_cast<unsigned>(Kind::with_timeout) - static_cast<unsigned>(Kind::with_cancel);
}

}  // namespace

void destroy(const Node* n) noexcept {
    // The common case, without calls: a cancellable child (detached, as cancelling leaves it)
    // going back to this thread's block cache, counted in this thread's slot.
    auto* victim = const_cast<Node*>(n);
    const Node* parent = victim->parent_;
    if constexpr (kNodeCache) {
        NodeCache& cache = t_node_cache;
        Slot* slot = t_slot;
        if (is_cancel_kind(victim->kind_) && slot && cache.room != 0 &&
            static_cast<CancelNode*>(victim)->detached_.load(std::memory_order_acquire))
            [[likely]] {
            static_cast<CancelNode*>(victim)->~CancelNode();
            node_push(cache, victim);
            slot->count.store(slot->count.load(std::memory_order_relaxed) - 1,
                              std::memory_order_relaxed);
            if (parent->immortal_ || (parent->refs_.load(std::memory_order_acquire) != 1 &&
                                      parent->refs_.fetch_sub(1, std::memory_order_acq_rel) != 1)) {
                return;
            }
            n = parent;
        }
    }
    destroy_chain(n);
}

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

    // The heap holds a reference to each armed node; whoever takes a node out of the heap (the
    // timer thread when it fires, disarm otherwise) gives that reference back.
    void arm(CancelNode* node) {
        std::unique_lock lk(mu_);
        if (stopped_) return;
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
        heap_.push_back(node);
        add_ref(node);
        node->heap_index_ = static_cast<std::uint32_t>(heap_.size() - 1);
        sift_up(node->heap_index_);
        node->armed_.store(true, std::memory_order_release);
        if (node->heap_index_ == 0 && node->deadline_ < sleeping_until_) {
            sleeping_until_ = node->deadline_;
            lk.unlock();
            cv_.notify_one();
        }
    }

    // The caller holds a reference, so the heap's is never the last one.
    void disarm(CancelNode* node) noexcept {
        if (!node->armed_.load(std::memory_order_acquire)) return;
        bool erased = false;
        {
            std::lock_guard lk(mu_);
            if (node->heap_index_ != CancelNode::kNotInHeap) {
                erase(node->heap_index_);
                erased = true;
            }
            node->armed_.store(false, std::memory_order_relaxed);
        }
        if (erased) release(node);
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
            // The heap's reference is now ours. Destroying a node never takes mu_ (an armed node
            // cannot be destroyed), so releasing it here is safe once mu_ is unlocked.
            top->armed_.store(false, std::memory_order_relaxed);
            lk.unlock();
            top->cancel_self(ContextErrc::deadline_exceeded, top->deadline_cause());
            release(top);
            lk.lock();
        }
    }

    void swap_at(std::size_t a, std::size_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        heap_[a]->heap_index_ = static_cast<std::uint32_t>(a);
        heap_[b]->heap_index_ = static_cast<std::uint32_t>(b);
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

namespace {

constexpr int kBatch = 8;

// The second half of a parent's cascade for a batch of child nodes whose state it has set: one
// full barrier for the batch, then each child's listeners (only for children ever listened to:
// an adder marks the child and then reads err_, we wrote err_ and now read the mark, so either
// we see the mark or the adder sees err_ and does not link), then detached_, our last access.
void finish_batch(CancelNode* const* batch, int n, int err, Code cause) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (int i = 0; i < n; ++i) {
        CancelNode* c = batch[i];
        if (c->lock_.listened()) {
            c->lock_.lock();
            c->fire_listeners(err, cause);
            c->lock_.unlock();
        }
        c->detached_.store(true, std::memory_order_release);
    }
}

}  // namespace

void CancelNode::on_parent_done(DoneListener* self, std::error_code err,
                                std::error_code cause) noexcept {
    auto* c = static_cast<CancelNode*>(self);
    const Code k = cause ? Code::of(cause) : Code{err.value(), &kCategory};
    c->set_cause(k);
    c->err_.store(err.value(), std::memory_order_release);
    finish_batch(&c, 1, err.value(), k);
}

void CancelNode::fire_listeners(int err, Code cause) noexcept {
    DoneListener* l = head_;
    if (!l) return;
    head_ = nullptr;
    CancelNode* batch[kBatch];
    int n = 0;
    while (l) {
        DoneListener* following = l->next;
        // A parent with many children walks a list of cold nodes: fetch the next one while
        // this one is cancelled.
        if (following) __builtin_prefetch(following, 1);
        l->linked = false;
        if (l->fire == &CancelNode::on_parent_done) [[likely]] {
            // A linked child is not done (state rule), and its state is ours to set.
            auto* c = static_cast<CancelNode*>(l);
            c->set_cause(cause);
            c->err_.store(err, std::memory_order_release);
            batch[n++] = c;
            if (n == kBatch) {
                finish_batch(batch, n, err, cause);
                n = 0;
            }
        } else {
            l->prev = l->next = nullptr;
            // Fired under our lock: a listener cannot be unlinked (and freed) meanwhile.
            l->fire(l, std::error_code(err, kCategory), std::error_code(cause.val, *cause.cat));
        }
        l = following;
    }
    if (n) finish_batch(batch, n, err, cause);
}

void CancelNode::unlink_from_parent() noexcept {
    auto* p = static_cast<CancelNode*>(owner);
    p->lock_.lock();
    if (linked) p->unlink_locked(this);
    p->lock_.unlock();
}

void CancelNode::cancel_slow(ContextErrc e, Code cause) noexcept {
    const int err = static_cast<int>(e);
    if (!cause) cause = Code{err, &kCategory};
    auto* p = static_cast<CancelNode*>(owner);
    if (p && !detached_.load(std::memory_order_acquire)) {
        // Maybe linked: our state is the parent's to guard (lock order: parent, then child).
        p->lock_.lock();
        lock_.lock();
        if (!linked) {
            // The parent's cascade came first and has finished with us (it held its lock).
            p->lock_.unlock();
            lock_.unlock();
            return;
        }
        p->unlink_locked(this);
        // Unlinked: no cascade can reach us any more.
        p->lock_.unlock();
        publish_and_fire(err, cause);
        detached_.store(true, std::memory_order_release);
        lock_.unlock();
        return;
    }
    lock_.lock();
    if (err_.load(std::memory_order_relaxed) == 0) publish_and_fire(err, cause);
    lock_.unlock();
}

void CancelNode::disarm() noexcept {
    TimerService::instance().disarm(this);
}

Listen add_listener(const Context& ctx, DoneListener* listener) noexcept;
bool remove_listener(DoneListener* listener) noexcept;

}  // namespace detail

struct ContextAccess {
    static const detail::Node* node(const Context& c) noexcept { return c.node_; }
    // Both adopt one reference.
    static Context make(const detail::Node* n) noexcept { return Context(n); }
    static CancelHandle make_handle(detail::CancelNode* n) noexcept { return CancelHandle(n); }
    static detail::CancelNode* handle_node(const CancelHandle& h) noexcept { return h.node_; }
    static const detail::Node* take(Context&& c) noexcept {
        return detail::Node::take(std::move(c));
    }
};

namespace {

using detail::CancelNode;
using detail::Code;
using detail::Kind;
using detail::Node;

// Roots are static and immortal: copying background() touches no reference count, so deriving
// from it contends on nothing.
const Node* background_node() noexcept {
    static const Node n(Kind::background, nullptr, nullptr, &detail::kNeverDoneState,
                        detail::kNoDeadline);
    return &n;
}
const Node* todo_node() noexcept {
    static const Node n(Kind::todo, nullptr, nullptr, &detail::kNeverDoneState,
                        detail::kNoDeadline);
    return &n;
}

// Makes a cancellable child (holding two references), linking it to the nearest cancellable
// ancestor (if any). A child of a done ancestor is born done with the ancestor's error and cause.
[[gnu::always_inline]] inline CancelNode* make_cancel_node(Context& parent, Kind kind,
                                                           Clock::time_point deadline) {
    // The allocation comes first (C++17), so a bad_alloc leaves parent's reference with parent.
    auto* node = new CancelNode(kind, detail::parent_or_background(std::move(parent)), deadline);
    if (const CancelNode* src = node->parent_->src_) {
        auto* anc = const_cast<CancelNode*>(src);
        // Marks anc listened, then reads its state: see CancelNode's state rule.
        anc->lock_.lock_to_listen();
        int e = anc->err_.load(std::memory_order_seq_cst);
        if (e == 0) {
            node->owner = anc;
            node->next = anc->head_;
            if (anc->head_) anc->head_->prev = node;
            anc->head_ = node;
            node->linked = true;
            node->detached_.store(false, std::memory_order_relaxed);
            anc->lock_.unlock();
        } else {
            Code cause{anc->cause_val_, anc->cause_cat_};
            anc->lock_.unlock();
            node->set_cause(cause);
            node->err_.store(e, std::memory_order_release);
        }
    }
    return node;
}

// Hands out the node's two references.
std::pair<Context, CancelHandle> make_pair_from(CancelNode* node) noexcept {
    return {ContextAccess::make(node), ContextAccess::make_handle(node)};
}

std::pair<Context, CancelHandle> deadline_impl(Context parent, Clock::time_point d,
                                               std::error_code cause, Kind kind) {
    const Node* pn = ContextAccess::node(parent);
    Clock::time_point parent_deadline = pn ? pn->deadline_ : detail::kNoDeadline;
    if (parent_deadline <= d) {
        // The parent's deadline comes first: a plain cancellable child (as Go does).
        return make_pair_from(make_cancel_node(parent, kind, parent_deadline));
    }
    CancelNode* node = make_cancel_node(parent, kind, d);
    node->set_deadline_cause(Code::of(cause));
    // Owned by the pair first, so that a throwing arm() cannot leak the node.
    std::pair<Context, CancelHandle> result = make_pair_from(node);
    if (node->err_.load(std::memory_order_relaxed) == 0) {
        if (d <= Clock::now()) {
            node->cancel_self(ContextErrc::deadline_exceeded, node->deadline_cause());
        } else {
            detail::TimerService::instance().arm(node);
        }
    }
    return result;
}

}  // namespace

// ---- Context ---------------------------------------------------------------------------------

std::error_code Context::cause() const {
    const Node* n = node_;
    if (!n || !n->src_) return {};
    const CancelNode* s = n->src_;
    if (s->err_.load(std::memory_order_acquire) == 0) return {};
    return s->cause();
}

std::optional<Clock::time_point> Context::deadline() const noexcept {
    const Node* n = node_;
    if (!n || n->deadline_ == detail::kNoDeadline) return std::nullopt;
    return n->deadline_;
}

std::string_view Context::name() const noexcept {
    const Node* n = node_;
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
            return n->key_ ? static_cast<const char*>(n->key_) : "event";
    }
    return "unknown";
}

const void* Context::find_value(const void* key) const noexcept {
    for (const Node* n = node_; n; n = n->parent_) {
        if (n->key_ == key) return static_cast<const detail::ValueNodeBase*>(n)->value_;
    }
    return nullptr;
}

// ---- CancelHandle ----------------------------------------------------------------------------

CancelHandle& CancelHandle::operator=(CancelHandle&& other) noexcept {
    if (this != &other) {
        if (node_) cancel_and_release(node_);
        node_ = std::exchange(other.node_, nullptr);
    }
    return *this;
}

void CancelHandle::cancel_and_release(detail::CancelNode* n) noexcept {
    n->cancel_self(ContextErrc::canceled, Code{});
    // A cancellable node is never immortal.
    if (n->refs_.load(std::memory_order_acquire) == 1 ||
        n->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        detail::destroy(n);
    }
}

void CancelHandle::cancel() noexcept {
    if (node_) node_->cancel_self(ContextErrc::canceled, Code{});
}

void CancelHandle::cancel(std::error_code cause) noexcept {
    if (node_) node_->cancel_self(ContextErrc::canceled, Code::of(cause));
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
    return make_pair_from(make_cancel_node(parent, Kind::with_cancel, d));
}

std::pair<Context, CancelHandle> with_cancel_cause(Context parent) {
    const Node* pn = ContextAccess::node(parent);
    Clock::time_point d = pn ? pn->deadline_ : detail::kNoDeadline;
    return make_pair_from(make_cancel_node(parent, Kind::with_cancel_cause, d));
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
    // The allocation comes first (C++17), so a bad_alloc leaves parent's reference with parent.
    return ContextAccess::make(new Node(Kind::without_cancel,
                                        detail::parent_or_background(std::move(parent)), nullptr,
                                        &detail::kNeverDoneState, detail::kNoDeadline));
}

namespace detail {

const Node* parent_or_background(Context&& c) noexcept {
    const Node* p = ContextAccess::take(std::move(c));
    return p ? p : background_node();
}

Listen add_listener(const Context& ctx, DoneListener* listener) noexcept {
    const Node* n = ContextAccess::node(ctx);
    if (!n || !n->src_) return Listen::never;
    auto* src = const_cast<CancelNode*>(n->src_);
    src->lock_.lock_to_listen();  // then read the state: see CancelNode's state rule
    if (src->err_.load(std::memory_order_seq_cst) != 0) {
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
        src->unlink_locked(listener);
        removed = true;
    }
    src->lock_.unlock();
    return removed;
}

std::pair<Context, CancelHandle> make_event(std::string_view name) {
    auto* node = new CancelNode(Kind::event, nullptr, kNoDeadline);
    node->key_ = name.data();
    return make_pair_from(node);
}

Context context_of(const CancelHandle& handle) noexcept {
    CancelNode* n = ContextAccess::handle_node(handle);
    add_ref(n);
    return ContextAccess::make(n);
}

}  // namespace detail

}  // namespace reqctx
