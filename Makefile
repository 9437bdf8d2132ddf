# The README's commands. Each installs what it needs on a fresh Debian machine (as root, or with sudo).
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT_BUILD_FLAGS ?=

.PHONY: help deps demo test test-fast test-tsan bench cluster20 clean

help:
	@echo "make demo       - build devts and run a 3-node local cluster demo (the main job)"
	@echo "make test       - the whole test suite, then again under ThreadSanitizer (what CI runs)"
	@echo "make test-fast  - the whole test suite once, without ThreadSanitizer"
	@echo "make test-tsan  - the test suite under ThreadSanitizer"
	@echo "make bench      - fan-out benchmarks: Devts beside plain C libuv"
	@echo "make cluster20  - start 20 node processes and time their convergence"

# libuv's headers and pkg-config file come from Debian's libuv1-dev.
deps:
	@pkg-config --exists libuv 2>/dev/null || { \
		echo "installing libuv1-dev"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libuv1-dev pkg-config; }

demo: deps
	swift build -c release --product devts $(SWIFT_BUILD_FLAGS)
	.build/release/devts demo

# The whole suite, then again under ThreadSanitizer (a separate build folder).
test: test-fast test-tsan

test-fast: deps
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	swift test --skip-build

test-tsan: deps
	swift build --build-tests --sanitize=thread --scratch-path .build-tsan $(SWIFT_BUILD_FLAGS)
	swift test --skip-build --sanitize=thread --scratch-path .build-tsan

bench: deps
	bash scripts/bench.sh

cluster20: deps
	bash scripts/cluster20.sh

clean:
	rm -rf .build .build-tsan Benchmarks/.build
