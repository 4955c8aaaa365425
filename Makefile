# reqctx: the two commands of the quick start are `make run` and `make test`.
# Every target installs what it needs from Debian first (scripts/install-deps, idempotent).

SHELL := /bin/bash
.DEFAULT_GOAL := help
JOBS ?= $(shell nproc)
# Relative paths in ccache's hash let a fresh clone in another folder reuse the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: help deps build run test sanitize bench format format-check lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

deps: ## Install the Debian packages to build and test
	@scripts/install-deps build test

build: deps ## Build everything (preset dev: -O2 -g, assertions on)
	cmake --preset dev >/dev/null
	cmake --build --preset dev -j $(JOBS)

run: ## Build (release), start memcached on 127.0.0.1:11211 if none answers, serve on 127.0.0.1:8080
	@scripts/install-deps build run
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target reqctx
	scripts/run-local build/release/service/reqctx

test: build ## Build and run every test (unit, integration with real memcached, e2e with the binary)
	ctest --preset dev -j $(JOBS)

sanitize: ## ASan+UBSan build of all tests, TSan build of the concurrency tests
	@scripts/install-deps build test
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j $(JOBS)
	ctest --preset debug -j $(JOBS)
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS)

bench: ## Microbenchmarks and load benchmarks (release build); figures in docs/performance.md
	@scripts/install-deps build test bench
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	scripts/bench

format: ## Rewrite sources with clang-format 14
	@scripts/install-deps dev
	git ls-files -z '*.cpp' '*.hpp' | xargs -0 clang-format -i

format-check: ## Fail if any source is not clang-format clean
	@scripts/install-deps dev
	git ls-files -z '*.cpp' '*.hpp' | xargs -0 clang-format --dry-run --Werror

lint: build ## clang-tidy 14 over the project's sources (compile database of the dev preset)
	@scripts/install-deps dev
	git ls-files '*.cpp' | grep -v '^tests/' | xargs -P $(JOBS) -n 4 clang-tidy -p build/dev --quiet

clean: ## Remove build outputs
	rm -rf build

# Developer experience: the README's walkthrough, load test and compose check.
DURATION ?= 5
CONNECTIONS ?= 32
.PHONY: demo load compose-check

demo: ## Two memcached + reqctx on free loopback ports, the README curl walkthrough, graceful shutdown
	@scripts/install-deps build run
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target reqctx
	REQCTX_BINARY=build/release/service/reqctx scripts/demo

load: ## Bounded wrk scenarios (DURATION=5, CONNECTIONS=32, LOAD_ARGS=, REQCTX_URL=running service); build/load/
	@scripts/install-deps build bench
	@if [ -z "$$REQCTX_URL" ]; then \
	  cmake --preset release >/dev/null && \
	  cmake --build --preset release -j $(JOBS) --target reqctx; fi
	REQCTX_BINARY=build/release/service/reqctx scripts/load --duration $(DURATION) --connections $(CONNECTIONS) $(LOAD_ARGS)

compose-check: ## Validate docker/compose.yaml (docker-compose config -q) and the Dockerfile's build steps
	@scripts/install-deps dev
	scripts/compose-check
