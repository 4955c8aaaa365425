// Microbenchmarks of the Context library in the shapes of Go's own context benchmarks
// (src/context/benchmark_test.go) and x/sync/semaphore's, so that ns/op compare directly.
// Allocations are counted by a replaced operator new and reported as allocs/op.

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "context/asio.hpp"
#include "context/context.hpp"
#include "context/semaphore.hpp"

namespace {

std::atomic<std::uint64_t> g_allocs{0};

}  // namespace

void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

namespace reqctx {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// Reports allocations per iteration (all threads of the benchmark together).
class AllocCounter {
public:
    explicit AllocCounter(benchmark::State& s) : state_(s) {
        if (s.thread_index() == 0) start_ = g_allocs.load();
    }
    ~AllocCounter() {
        if (state_.thread_index() != 0) return;
        auto n = g_allocs.load() - start_;
        state_.counters["allocs/op"] =
            benchmark::Counter(static_cast<double>(n), benchmark::Counter::kAvgIterations);
    }

private:
    benchmark::State& state_;
    std::uint64_t start_ = 0;
};

// Go: BenchmarkWithCancel-ish: WithCancel(Background()) + cancel().
void BM_WithCancelCancel_Background(benchmark::State& state) {
    AllocCounter ac(state);
    for (auto _ : state) {
        auto [ctx, cancel] = with_cancel(background());
        cancel.cancel();
        benchmark::DoNotOptimize(ctx);
    }
}
BENCHMARK(BM_WithCancelCancel_Background);

// WithCancel(parent) + cancel() with a cancellable, open parent.
void BM_WithCancelCancel_CancellableParent(benchmark::State& state) {
    auto [parent, cancel_parent] = with_cancel(background());
    AllocCounter ac(state);
    for (auto _ : state) {
        auto [ctx, cancel] = with_cancel(parent);
        cancel.cancel();
        benchmark::DoNotOptimize(ctx);
    }
}
BENCHMARK(BM_WithCancelCancel_CancellableParent);

// Go: BenchmarkWithTimeout shape: WithTimeout(root, 1 min) + cancel().
void BM_WithTimeoutCancel(benchmark::State& state) {
    auto [root, cancel_root] = with_cancel(background());
    AllocCounter ac(state);
    for (auto _ : state) {
        auto [ctx, cancel] = with_timeout(root, 1min);
        cancel.cancel();
        benchmark::DoNotOptimize(ctx);
    }
}
BENCHMARK(BM_WithTimeoutCancel);
BENCHMARK(BM_WithTimeoutCancel)->Threads(2)->UseRealTime();

// Go: BenchmarkCommonParentCancel: many goroutines derive from and cancel under one parent.
// (Go's uses RunParallel; the parallel variant is the like-for-like one.)
// One open parent shared by every benchmark thread (created once, thread-safely).
const Context& shared_open_parent() {
    static const auto* root = new std::pair<Context, CancelHandle>(with_cancel(background()));
    return root->first;
}

void BM_CommonParentCancel(benchmark::State& state) {
    const Context& parent = shared_open_parent();
    AllocCounter ac(state);
    for (auto _ : state) {
        auto [ctx, cancel] = with_cancel(parent);
        cancel.cancel();
        benchmark::DoNotOptimize(ctx);
    }
}
BENCHMARK(BM_CommonParentCancel);
BENCHMARK(BM_CommonParentCancel)->Threads(2)->UseRealTime();

// Go: BenchmarkCancelTree: a chain of `depth` WithCancel from the root; C++ handles are RAII so
// the chain is also cancelled and freed (leaf first) inside the measured loop.
void cancel_tree(benchmark::State& state, bool open_parent) {
    const auto depth = static_cast<std::size_t>(state.range(0));
    std::vector<std::pair<Context, CancelHandle>> chain;
    chain.reserve(depth);
    AllocCounter ac(state);
    for (auto _ : state) {
        std::optional<std::pair<Context, CancelHandle>> root;
        if (open_parent) root.emplace(with_cancel(background()));
        Context cur = open_parent ? root->first : background();
        for (std::size_t d = 0; d < depth; ++d) {
            chain.push_back(with_cancel(cur));
            cur = chain.back().first;
        }
        cur = background();
        while (!chain.empty()) chain.pop_back();
        if (root) root->second.cancel();
    }
}
void BM_CancelTree_Background(benchmark::State& s) {
    cancel_tree(s, false);
}
void BM_CancelTree_OpenParent(benchmark::State& s) {
    cancel_tree(s, true);
}
BENCHMARK(BM_CancelTree_Background)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK(BM_CancelTree_OpenParent)->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

// Go: BenchmarkCheckCanceled/Err on a cancelled context.
void BM_CheckCanceled_Err(benchmark::State& state) {
    auto [ctx, cancel] = with_cancel(background());
    cancel.cancel();
    AllocCounter ac(state);
    for (auto _ : state) benchmark::DoNotOptimize(ctx.err());
}
BENCHMARK(BM_CheckCanceled_Err);

// Go: BenchmarkContextCancelDone: parallel polling of Done() on an open context.
void BM_ContextCancelDone(benchmark::State& state) {
    const Context& ctx = shared_open_parent();
    AllocCounter ac(state);
    for (auto _ : state) benchmark::DoNotOptimize(ctx.done());
}
BENCHMARK(BM_ContextCancelDone);
BENCHMARK(BM_ContextCancelDone)->Threads(2)->UseRealTime();

// Go: BenchmarkDeepValueSameGoRoutine: lookup of a missing key through `depth` value nodes.
const Key<int> kMissing{"missing"};
void BM_DeepValueMiss(benchmark::State& state) {
    std::vector<std::unique_ptr<Key<int>>> keys;
    for (int i = 0; i < state.range(0); ++i) keys.push_back(std::make_unique<Key<int>>("k"));
    Context ctx = background();
    for (int i = 0; i < state.range(0); ++i)
        ctx = with_value(ctx, *keys[static_cast<std::size_t>(i)], i);
    AllocCounter ac(state);
    for (auto _ : state) benchmark::DoNotOptimize(ctx.value(kMissing));
}
BENCHMARK(BM_DeepValueMiss)->Arg(10)->Arg(100);

// A parent with 1000 children, cancelled (creation, cancellation and freeing per op).
void BM_ParentWith1000ChildrenCancelled(benchmark::State& state) {
    std::vector<std::pair<Context, CancelHandle>> children;
    children.reserve(1000);
    AllocCounter ac(state);
    for (auto _ : state) {
        auto [parent, cancel] = with_cancel(background());
        for (int i = 0; i < 1000; ++i) children.push_back(with_cancel(parent));
        cancel.cancel();
        children.clear();
    }
}
BENCHMARK(BM_ParentWith1000ChildrenCancelled);

// Semaphore: acquire(ctx, 1) + release(1) in a coroutine, uncontended.
net::awaitable<void> sem_loop(benchmark::State* state, Semaphore* sem, Context ctx) {
    for (auto _ : *state) {
        std::error_code ec = co_await sem->acquire(ctx, 1);
        benchmark::DoNotOptimize(ec);
        sem->release(1);
    }
}
void BM_SemaphoreUncontended(benchmark::State& state) {
    Semaphore sem(10);
    auto [ctx, cancel] = with_cancel(background());
    net::io_context io;
    AllocCounter ac(state);
    net::co_spawn(io, sem_loop(&state, &sem, ctx), [](std::exception_ptr) {});
    io.run();
}
BENCHMARK(BM_SemaphoreUncontended);

// Semaphore of capacity 1 shared by two threads, each acquiring/yielding/releasing: waits and
// cross-thread grants on most iterations.
net::awaitable<void> sem_contended_loop(benchmark::State* state, Semaphore* sem, Context ctx) {
    for (auto _ : *state) {
        std::error_code ec = co_await sem->acquire(ctx, 1);
        benchmark::DoNotOptimize(ec);
        co_await net::post(net::use_awaitable);
        sem->release(1);
    }
}
void BM_SemaphoreContended(benchmark::State& state) {
    static auto* sem = new Semaphore(1);  // shared by the benchmark's threads
    auto [ctx, cancel] = with_cancel(background());
    net::io_context io;
    AllocCounter ac(state);
    net::co_spawn(io, sem_contended_loop(&state, sem, ctx), [](std::exception_ptr) {});
    io.run();
}
BENCHMARK(BM_SemaphoreContended)->Threads(1);
BENCHMARK(BM_SemaphoreContended)->Threads(2)->UseRealTime();

// The cost bind_context adds to one Asio operation: post() of a handler, bare vs bound to a
// cancellable context (listener registration, slot binding, deregistration).
void BM_Post(benchmark::State& state) {
    net::io_context io;
    int n = 0;
    AllocCounter ac(state);
    for (auto _ : state) {
        net::post(io, [&n] { ++n; });
        io.poll_one();
    }
    benchmark::DoNotOptimize(n);
}
BENCHMARK(BM_Post);

void BM_PostBindContext(benchmark::State& state) {
    auto [ctx, cancel] = with_cancel(background());
    net::io_context io;
    int n = 0;
    AllocCounter ac(state);
    for (auto _ : state) {
        net::post(io, bind_context(ctx, net::bind_executor(io, [&n] { ++n; })));
        io.poll_one();
    }
    benchmark::DoNotOptimize(n);
}
BENCHMARK(BM_PostBindContext);

}  // namespace
}  // namespace reqctx

BENCHMARK_MAIN();
