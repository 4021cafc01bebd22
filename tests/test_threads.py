"""Thread-count control and multi-threaded determinism.

set_num_threads validates its argument and get_num_threads reports it; results with 1 and
several threads agree to rounding; and with a fixed thread count, repeated calls are
bitwise identical for every forward and backward output. The shapes are big enough for the
kernels to split the work across threads. The autouse fixture in conftest.py restores the
default thread count (None) after each test.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import cconv
from cconv import functional as F

from reference import assert_close

DTYPES = [np.float32, np.float64]
AGREEMENT_RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def openmp_built():
    """True when this build of cconv has OpenMP (otherwise every count reads back as 1)."""
    from cconv import _conv
    return bool(_conv.openmp_version())


def _arrays(dtype):
    rng = np.random.default_rng(0)
    return dict(
        x=rng.standard_normal((8, 16, 24, 24)).astype(dtype),
        weight=rng.standard_normal((32, 16, 3, 3)).astype(dtype),
        bias=rng.standard_normal(32).astype(dtype),
        # many images, few channels: the weight gradient must be reduced across threads
        x_many=rng.standard_normal((64, 8, 16, 16)).astype(dtype),
        weight_many=rng.standard_normal((16, 8, 3, 3)).astype(dtype),
        x_grouped=rng.standard_normal((8, 16, 24, 24)).astype(dtype),
        weight_grouped=rng.standard_normal((16, 1, 3, 3)).astype(dtype),
    )


def all_outputs(dtype):
    """Every operator's forward and backward outputs on thread-splittable shapes, by name."""
    a = _arrays(dtype)
    rng = np.random.default_rng(1)
    outputs = {}
    y = F.conv2d(a["x"], a["weight"], a["bias"], padding=1)
    outputs["conv y"] = y
    g = rng.standard_normal(y.shape).astype(dtype)
    outputs.update(zip(("conv grad_x", "conv grad_weight", "conv grad_bias"),
                       F.conv2d_backward(g, a["x"], a["weight"], padding=1)))
    y = F.conv2d(a["x_many"], a["weight_many"], stride=2, padding="same")
    g = rng.standard_normal(y.shape).astype(dtype)
    outputs.update(zip(("many grad_x", "many grad_weight", "many grad_bias"),
                       F.conv2d_backward(g, a["x_many"], a["weight_many"], stride=2, padding="same")))
    y = F.conv2d(a["x_grouped"], a["weight_grouped"], padding=1, groups=16)
    outputs["depthwise y"] = y
    outputs.update(zip(("depthwise grad_x", "depthwise grad_weight", "depthwise grad_bias"),
                       F.conv2d_backward(y, a["x_grouped"], a["weight_grouped"], padding=1, groups=16)))
    x = a["x"]
    positive = np.abs(x) + 0.1
    for name, forward, backward, args, kwargs, data in [
        ("max", F.max_pool2d, F.max_pool2d_backward, (3,), dict(stride=2, padding=1, ceil_mode=True), x),
        ("avg", F.avg_pool2d, F.avg_pool2d_backward, (3,), dict(stride=2, padding=1, count_include_pad=False), x),
        ("lp", F.lp_pool2d, F.lp_pool2d_backward, (3, 2), dict(ceil_mode=True), positive),
    ]:
        y = forward(data, *args, **kwargs)
        outputs[name + " y"] = y
        outputs[name + " grad_x"] = backward(rng.standard_normal(y.shape).astype(dtype), data, *args, **kwargs)
    return outputs


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("threads", [2, 3])
def test_one_and_several_threads_agree(threads, dtype):
    cconv.set_num_threads(1)
    serial = all_outputs(dtype)
    cconv.set_num_threads(threads)
    parallel = all_outputs(dtype)
    for name, expected in serial.items():
        assert_close(parallel[name], expected.astype(np.float64), dtype, name, tol=AGREEMENT_RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("threads", [1, 2, None])
def test_fixed_thread_count_is_bitwise_reproducible(threads, dtype):
    cconv.set_num_threads(threads)
    first = all_outputs(dtype)
    for _ in range(2):
        again = all_outputs(dtype)
        for name, expected in first.items():
            assert np.array_equal(again[name], expected), f"{name} changed between identical calls"


@pytest.mark.parametrize("bad", [0, -2, -100])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError):
        cconv.set_num_threads(bad)


@pytest.mark.parametrize("bad", ["a", 1.5, True, [2]])
def test_set_num_threads_rejects_non_integers(bad):
    with pytest.raises(TypeError):
        cconv.set_num_threads(bad)


def test_rejected_values_leave_the_setting_alone():
    cconv.set_num_threads(1)
    for bad in (0, -2, "a"):
        with pytest.raises((ValueError, TypeError)):
            cconv.set_num_threads(bad)
    assert cconv.get_num_threads() == 1


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_get_num_threads_reflects_the_setting(n):
    cconv.set_num_threads(n)
    assert cconv.get_num_threads() == (n if openmp_built() else 1)


def test_minus_one_means_every_core():
    cconv.set_num_threads(-1)
    if not openmp_built():
        assert cconv.get_num_threads() == 1
        return
    cores = {os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        cores.add(len(os.sched_getaffinity(0)))
    assert cconv.get_num_threads() in cores


def test_default_is_a_positive_count():
    cconv.set_num_threads(None)
    assert isinstance(cconv.get_num_threads(), int) and cconv.get_num_threads() >= 1


def test_default_honours_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not openmp_built():
        pytest.skip("serial build")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert cconv.get_num_threads() == 1



def test_weight_gradient_when_openmp_gives_fewer_threads_than_asked(tmp_path):
    """Regression: every per-thread partial of grad_weight must be zeroed even when the OpenMP
    team is smaller than requested (OMP_THREAD_LIMIT, nested regions, serial builds).
    MALLOC_PERTURB_ fills fresh memory with garbage so a missed zeroing shows."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    script = (
        "import numpy as np, cconv\n"
        "from cconv import functional as F\n"
        "rng = np.random.default_rng(0)\n"
        "x, w = rng.standard_normal((1, 40, 21, 21)), rng.standard_normal((20, 40, 3, 3))\n"
        "y = F.conv2d(x, w, padding=1)\n"
        "cconv.set_num_threads(1); a = F.conv2d_backward(y, x, w, padding=1)[1]\n"
        "cconv.set_num_threads(3); b = F.conv2d_backward(y, x, w, padding=1)[1]\n"
        "print(float(np.abs(a - b).max() / np.abs(a).max()))\n")
    env = dict(os.environ, OMP_THREAD_LIMIT="1", MALLOC_PERTURB_="165",
               PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 1e-12


def spin_setting(env):
    code = "import os, cconv; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    clean["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True,
                          text=True, check=True, cwd=clean["PYTHONPATH"]).stdout.split()


def test_import_bounds_openmp_spinning_unless_the_user_chose():
    assert spin_setting({}) == ["3000", "None"]
    assert spin_setting({"OMP_WAIT_POLICY": "active"}) == ["None", "active"]
    assert spin_setting({"GOMP_SPINCOUNT": "infinite"}) == ["infinite", "None"]
