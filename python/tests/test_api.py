"""The module's surface: names, version, build info, plans, stubs, and runnable docs."""

from __future__ import annotations

import ast
import doctest
import inspect
import pathlib

import numpy as np
import pytest

import strideconv
from strideconv import _core

PACKAGE = pathlib.Path(strideconv.__file__).parent


def test_public_names():
    for name in strideconv.__all__:
        assert hasattr(strideconv, name), name
    assert isinstance(strideconv.__version__, str) and strideconv.__version__.count(".") == 2


def test_methods_and_build_info():
    methods = strideconv.methods()
    assert {"naive", "im2col", "shift_add", "fft_full", "fft", "direct"} <= set(methods)
    assert "auto" not in methods
    info = strideconv.build_info()
    assert info["version"] == strideconv.__version__
    assert info["profile"] in ("release", "debug")
    assert isinstance(info["lto"], str) and info["lto"]
    if info["profile"] == "debug":
        assert info["lto"] == "off"
    assert isinstance(info["cpu_features"], list)
    assert info["default_threads"] >= 1
    assert info["kernel_isa"] in ("avx512", "avx2", "scalar")
    assert info["methods"] == methods


def test_plan_object():
    p = strideconv.plan((7, 7), (3, 3), np.float64, stride=2, padding=1, method="im2col")
    assert p.method == "im2col" and p.op == "correlate"
    assert p.x_shape == (7, 7) and p.k_shape == (3, 3) and p.out_shape == (4, 4)
    assert p.dtype == np.float64
    text = p.explain()
    assert "im2col" in text and "chosen" in text
    assert "strideconv.Plan" in repr(p)
    x, k = np.arange(49.0).reshape(7, 7), np.ones((3, 3))
    np.testing.assert_array_equal(p(x, k), strideconv.correlate(x, k, stride=2, padding=1))
    auto = strideconv.plan((7, 7), (3, 3), np.float64)
    assert auto.method in strideconv.methods()
    assert isinstance(p, strideconv.Plan)


def test_plan_for_every_op():
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(9, 9)), rng.normal(size=(3, 3))
    conv = strideconv.plan(x.shape, k.shape, np.float64, op="convolve", padding="full")
    np.testing.assert_allclose(conv(x, k), strideconv.convolve(x, k, padding="full"))
    for rank in (1, 2, 3):
        xs, ws = (2, 4) + (6,) * rank, (2, 2) + (3,) * rank
        xb, wb, b = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=2)
        p = strideconv.plan(xs, ws, np.float64, op=f"conv{rank}d", groups=2, stride=2)
        fn = getattr(strideconv, f"conv{rank}d")
        np.testing.assert_allclose(p(xb, wb, b), fn(xb, wb, b, groups=2, stride=2))
        assert p.op == f"conv{rank}d"


def test_plan_measured():
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(64, 64)), rng.normal(size=(9, 9))
    p = strideconv.plan(x.shape, k.shape, np.float64, stride=2, planning="measure")
    assert p.method in strideconv.methods()
    assert "measure" in p.explain()
    np.testing.assert_allclose(p(x, k), strideconv.correlate(x, k, stride=2), atol=1e-9)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    xb = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
    q = strideconv.plan(xb.shape, w.shape, np.float32, op="conv2d", padding=1, planning="measure")
    np.testing.assert_allclose(q(xb, w), strideconv.conv2d(xb, w, padding=1), rtol=1e-4, atol=1e-4)
    # A named method is kept as asked.
    named = strideconv.plan(x.shape, k.shape, np.float64, method="naive", planning="measure")
    assert named.method == "naive"
    with pytest.raises(ValueError, match="planning"):
        strideconv.plan(x.shape, k.shape, np.float64, planning="fast")
    with pytest.raises(TypeError, match="planning"):
        strideconv.plan(x.shape, k.shape, np.float64, planning=1)


def test_plan_dtypes():
    ints = strideconv.plan((6,), (2,), np.int32)
    assert ints(np.arange(6, dtype=np.uint8), np.array([1, -1], np.int8)).tolist() == [-1] * 5
    halves = strideconv.plan((6,), (2,), np.float16)
    got = halves(np.arange(6, dtype=np.float16), np.ones(2, np.float16))
    assert got.dtype == np.float16 and got.tolist() == [1, 3, 5, 7, 9]
    safe = strideconv.plan((6,), (2,), np.float64)
    assert safe(np.arange(6), np.ones(2, np.float32)).dtype == np.float64  # safe casts accepted
    narrow = strideconv.plan((6,), (2,), np.int64, out_dtype=np.int16)
    assert narrow(np.arange(6), np.ones(2, np.int64)).dtype == np.int16


def _stub_functions(path):
    tree = ast.parse(path.read_text())
    functions, classes = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {
                n.name: [a.arg for a in n.args.args] for n in node.body if isinstance(n, ast.FunctionDef)
            }
    return functions, classes


def test_stubs_match_the_compiled_module():
    assert (PACKAGE / "py.typed").exists()
    functions, classes = _stub_functions(PACKAGE / "_core.pyi")
    runtime = {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}
    assert set(functions) | set(classes) == runtime
    for name, params in functions.items():
        assert list(inspect.signature(getattr(_core, name)).parameters) == params, name
    plan_members = classes["Plan"]
    # __call__ has no runtime signature (a slot); check its parameter names by calling.
    assert plan_members["__call__"] == ["self", "x", "k", "bias"]
    p = strideconv.plan((1, 1, 4), (1, 1, 2), np.float64, op="conv1d")
    p(x=np.ones((1, 1, 4)), k=np.ones((1, 1, 2)), bias=np.ones(1))
    for member in plan_members:
        assert hasattr(_core.Plan, member), member


def test_public_signatures_match_the_spec():
    sig = inspect.signature(strideconv.correlate)
    assert list(sig.parameters) == ["x", "k", "stride", "padding", "pad_mode", "cval", "dilation",
                                    "channel_axis", "method", "out_dtype", "threads"]
    assert inspect.signature(strideconv.convolve).parameters.keys() == sig.parameters.keys()
    for rank in (1, 2, 3):
        conv = inspect.signature(getattr(strideconv, f"conv{rank}d"))
        assert list(conv.parameters) == ["input", "weight", "bias", "stride", "padding", "dilation",
                                         "groups", "padding_mode", "layout", "method"]
    assert list(inspect.signature(strideconv.plan).parameters)[:3] == ["x_shape", "k_shape",
                                                                       "dtype"]


DOCTESTS = [t for t in doctest.DocTestFinder().find(strideconv) if t.examples]


def test_docs_have_examples():
    names = {t.name.split(".")[-1] for t in DOCTESTS}
    for public in ["strideconv", "correlate", "convolve", "conv1d", "conv2d", "conv3d", "plan",
                   "methods", "build_info"]:
        assert public in names, public


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples_run(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} failing example(s) in {test.name}"
