# sfa — the README's two commands.
#
#   make demo    configure (CMake + Ninja, Release), build, run sfa-bench's default suite
#   make test    configure, build, run every C++ test (CTest) and the Python tests when present
#   make clean   remove the build folder
#
# Variables: BUILD_DIR (build), BUILD_TYPE (Release), JOBS (all cores),
#            CMAKE_ARGS passed to CMake, e.g. make test CMAKE_ARGS="-DSFA_CUDA=OFF"
#                                                make demo CMAKE_ARGS="-DSFA_CUDA_KERNELS=fa2_mma"
#            BENCH_ARGS passed to sfa-bench by make demo, e.g. BENCH_ARGS=--json

BUILD_DIR  ?= build
BUILD_TYPE ?= Release
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
BENCH_ARGS ?=

.PHONY: demo test build configure deps clean

deps:
	@bash scripts/ensure-deps

# Ninja when present; an existing build folder keeps the generator it was made with.
configure: deps
	@generator=""; \
	if [ ! -f "$(BUILD_DIR)/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then generator="-G Ninja"; fi; \
	echo "cmake -S . -B $(BUILD_DIR) $$generator -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)"; \
	cmake -S . -B "$(BUILD_DIR)" $$generator -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	cmake --build "$(BUILD_DIR)" --parallel $(JOBS)

demo: configure
	cmake --build "$(BUILD_DIR)" --parallel $(JOBS) --target sfa-bench
	"$(BUILD_DIR)/tools/sfa-bench" --suite default $(BENCH_ARGS)

test: build
	cd "$(BUILD_DIR)" && ctest --output-on-failure --parallel $(JOBS)
	@if [ -d python ] && [ -f scripts/python-test ]; then BUILD_DIR="$(BUILD_DIR)" bash scripts/python-test; fi

clean:
	rm -rf "$(BUILD_DIR)"
