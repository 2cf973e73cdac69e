# Entry points. Every target installs what it needs (apt-get) first.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps build demo demo-s3 test bench clean

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

# The same pipeline against S3 (s3rver on 127.0.0.1, awscli uploads the raw data).
demo-s3: build
	@scripts/demo-s3.sh $(BUILD)

test: build
	@scripts/install-deps.sh lambda   # what the lambda_service test's aws-lambda-ric build needs
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Benchmarks against named peers (scikit-learn); results printed.
bench: build
	@scripts/install-deps.sh bench
	@$(BUILD)/virga bench ingest
	@$(BUILD)/src/data/bench_iterator

# Side-by-side comparison suite (issue 7): virga with its server, its storage channels,
# LIBLINEAR and scikit-learn on the same data; bench/results/compare.md + PNG plots.
# QUICK=1: a small version (as in CI) written to a scratch directory.
.PHONY: bench-compare
bench-compare: build
	@scripts/install-deps.sh bench
	@$(if $(VW),VW=$(VW) )bench/compare.sh $(if $(QUICK),--quick) $(BUILD)/virga

clean:
	rm -rf $(BUILD)
