// Fixed-count runs of the Context benchmark shapes, for instruction counts that do not depend on
// the machine's load. Each shape runs N times inside its own function (run_<shape>), so
//   valgrind --tool=callgrind --toggle-collect='*run_children*' context_shapes children 20
// counts N ops: Ir / N is the cost of one (see docs/performance.md).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "context/context.hpp"

namespace {

using namespace std::chrono_literals;
using reqctx::CancelHandle;
using reqctx::Context;

template <class T>
void keep(const T& v) {
    asm volatile("" : : "r"(&v) : "memory");
}

// A parent with 1000 children, cancelled (BM_ParentWith1000ChildrenCancelled).
__attribute__((noinline)) void run_children(int n) {
    std::vector<std::pair<Context, CancelHandle>> children;
    children.reserve(1000);
    for (int it = 0; it < n; ++it) {
        auto [parent, cancel] = reqctx::with_cancel(reqctx::background());
        for (int i = 0; i < 1000; ++i) children.push_back(reqctx::with_cancel(parent));
        cancel.cancel();
        children.clear();
    }
}

// A chain of 1000 with_cancel from background(), freed leaf first (BM_CancelTree_Background).
__attribute__((noinline)) void run_tree(int n) {
    std::vector<std::pair<Context, CancelHandle>> chain;
    chain.reserve(1000);
    for (int it = 0; it < n; ++it) {
        Context cur = reqctx::background();
        for (int d = 0; d < 1000; ++d) {
            chain.push_back(reqctx::with_cancel(cur));
            cur = chain.back().first;
        }
        cur = reqctx::background();
        while (!chain.empty()) chain.pop_back();
    }
}

// with_cancel + cancel under background() or a cancellable parent.
__attribute__((noinline)) void run_cancel(Context parent, int n) {
    for (int it = 0; it < n; ++it) {
        auto [ctx, cancel] = reqctx::with_cancel(parent);
        cancel.cancel();
        keep(ctx);
    }
}

// with_timeout(1 min) + cancel under a cancellable parent.
__attribute__((noinline)) void run_timeout(Context parent, int n) {
    for (int it = 0; it < n; ++it) {
        auto [ctx, cancel] = reqctx::with_timeout(parent, 1min);
        cancel.cancel();
        keep(ctx);
    }
}

const reqctx::Key<int> kMissing{"missing"};

// A missing key looked up through a chain of value nodes (BM_DeepValueMiss).
__attribute__((noinline)) void run_value_miss(Context ctx, int n) {
    for (int it = 0; it < n; ++it) keep(ctx.value(kMissing));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr,
                     "usage: %s children|tree|cancel_background|cancel_parent|timeout|"
                     "value10|value100 N\n",
                     argv[0]);
        return 2;
    }
    const char* shape = argv[1];
    const int n = std::atoi(argv[2]);
    // Warm up: the deadline thread, the node cache.
    run_children(2);
    auto [parent, cancel_parent] = reqctx::with_cancel(reqctx::background());
    run_timeout(parent, 2);
    if (!std::strcmp(shape, "children")) {
        run_children(n);
    } else if (!std::strcmp(shape, "tree")) {
        run_tree(n);
    } else if (!std::strcmp(shape, "cancel_background")) {
        run_cancel(reqctx::background(), n);
    } else if (!std::strcmp(shape, "cancel_parent")) {
        run_cancel(parent, n);
    } else if (!std::strcmp(shape, "timeout")) {
        run_timeout(parent, n);
    } else if (!std::strncmp(shape, "value", 5)) {
        const int depth = std::atoi(shape + 5);
        std::vector<std::unique_ptr<reqctx::Key<int>>> keys;
        Context ctx = reqctx::background();
        for (int i = 0; i < depth; ++i) {
            keys.push_back(std::make_unique<reqctx::Key<int>>("k"));
            ctx = reqctx::with_value(ctx, *keys.back(), i);
        }
        run_value_miss(ctx, n);
    } else {
        std::fprintf(stderr, "unknown shape %s\n", shape);
        return 2;
    }
    return 0;
}
