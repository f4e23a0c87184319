# Every routine task, one short name. README names the two that matter: run, test.
PY ?= python3
CARGO ?= cargo

.PHONY: run test build python test-rust test-python lint fmt bench demo

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

test-rust:
	$(CARGO) test --workspace --exclude strideconv-python

test-python: python
	$(PY) -m pytest -q python/tests

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
