# Convenience targets over CMake; see README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: deps build test run models bench clean format check-format tidy thread-safety

deps:
	bash scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

# Every test: C++ unit tests, conformance against the PyTorch and Hugging Face references.
test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The main job on the default model (models/shakespeare-mlkv-2, trained and shipped here).
run: build
	bash scripts/run-default.sh $(BUILD)

# The Shakespeare model family of docs/models.md: pretrain, convert and uptrain every variant
# into $(BUILD)/models/shakespeare (about an hour on two cores; an interrupted run goes on).
models: build
	bash tools/train/make_family.sh $(BUILD)

bench: build
	bash bench/run_decode_bench.sh $(BUILD)

# Style and static checks; .ci/run runs check-format, thread-safety and tidy.
format:
	git ls-files -z '*.cc' '*.h' '*.cu' '*.cuh' '*.cpp' '*.hpp' | xargs -0 clang-format-14 -i

check-format:
	bash scripts/check-format.sh

# clang's -Wthread-safety as errors over the translation units that lock (-fsyntax-only).
thread-safety: build
	python3 scripts/check-thread-safety.py $(BUILD)

# clang-tidy over the files the newest commit changed (TIDY_BASE=<rev> or TIDY_ALL=1 for more).
tidy: build
	bash scripts/check-tidy.sh $(BUILD)

clean:
	rm -rf $(BUILD)
