# Every routine task, one short name. README names the two that matter: run, test.
PY ?= python3
CARGO ?= cargo

.PHONY: run test build python test-rust test-python lint fmt bench bench-quick calibrate

## run: the seed's example by every method, then the seed's comparison study (seed-2d).
run: build
	./target/release/strideconv demo
	./target/release/strideconv compare

build:
	$(CARGO) build --release -p strideconv-cli

## python: build the Python package (maturin) and install it into the current Python.
python:
	$(PY) -m pip install -q maturin numpy scipy hypothesis pytest
	$(PY) -m pip install -q ./python

## test: every test: Rust (unit, property, fixtures, CLI) and Python (pytest).
test: test-rust test-python

# Every test target and the doc examples; not the profiling examples under examples/ (each is
# another build of the generic kernels: `make lint` checks that they compile).
test-rust:
	$(CARGO) test --workspace --exclude strideconv-python --lib --bins --tests
	$(CARGO) test --workspace --exclude strideconv-python --doc

test-python: python
	$(PY) -m pytest -q python/tests

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## bench: side-by-side timings against the peers (numpy, scipy, torch, onnxruntime, jax when
## installed), written to BENCHMARKS.md; bench-quick is a 2-minute subset.
bench: python
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) bench/run.py

bench-quick: python
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) bench/run.py --quick

## calibrate: fit the cost model to this machine (wisdom file; use with STRIDECONV_WISDOM).
calibrate: build
	./target/release/strideconv calibrate --out strideconv-wisdom.json
