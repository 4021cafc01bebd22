"""cconv from several Python threads and processes at once.

* The kernels release the GIL: a pure-Python thread keeps running while a kernel does.
* Four Python threads calling every operator at once get bitwise the results of calling them one
  after another (with a fixed thread count every kernel is deterministic).
* set_num_threads called from other threads between (and during) kernel calls is safe: every
  result stays right.
* Nested parallelism: cconv inside a ThreadPoolExecutor, joblib workers (when joblib is
  installed) and multiprocessing workers finishes and gives the right results. These run in a
  subprocess with a timeout (its whole process group is killed on expiry), so that a deadlock
  fails the test instead of hanging the run. joblib's process workers also limit cconv to
  cores / workers threads, so they do not oversubscribe.
"""
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import cconv
from cconv import functional as F

from reference import assert_close

DTYPES = [np.float32, np.float64]


def inputs(seed, dtype=np.float64, scale=1):
    """x, weight, bias and the grad_outs for every operator, from `seed` (scale multiplies the
    batch, to make the calls long)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4 * scale, 16, 24, 24)).astype(dtype)
    return dict(x=x, weight=rng.standard_normal((32, 16, 3, 3)).astype(dtype),
                bias=rng.standard_normal(32).astype(dtype),
                grad_conv=rng.standard_normal((4 * scale, 32, 12, 12)).astype(dtype),
                grad_pool=rng.standard_normal((4 * scale, 16, 12, 12)).astype(dtype))


OPERATORS = {  # name: function of the inputs dict
    "conv2d": lambda a: F.conv2d(a["x"], a["weight"], a["bias"], stride=2, padding=1),
    "conv2d-relu": lambda a: F.conv2d(a["x"], a["weight"], a["bias"], stride=2, padding=1, activation="relu"),
    "conv2d_backward": lambda a: F.conv2d_backward(a["grad_conv"], a["x"], a["weight"], stride=2, padding=1),
    "max_pool2d": lambda a: F.max_pool2d(a["x"], 3, 2, 1),
    "max_pool2d_backward": lambda a: F.max_pool2d_backward(a["grad_pool"], a["x"], 3, 2, 1),
    "avg_pool2d": lambda a: F.avg_pool2d(a["x"], 2, count_include_pad=False),
    "avg_pool2d_backward": lambda a: F.avg_pool2d_backward(a["grad_pool"], a["x"], 2),
    "lp_pool2d": lambda a: F.lp_pool2d(np.abs(a["x"]), 2, 2),
    "lp_pool2d_backward": lambda a: F.lp_pool2d_backward(a["grad_pool"], np.abs(a["x"]), 1.5, 2),
}


def all_results(a, rotate=0):
    """Every operator's outputs on inputs `a`, as a flat {name: array} dict; `rotate` changes the
    order the operators run in (so that concurrent threads run different kernels at a time)."""
    names = list(OPERATORS)
    names = names[rotate:] + names[:rotate]
    results = {}
    for name in names:
        out = OPERATORS[name](a)
        for i, array in enumerate(out if isinstance(out, tuple) else (out,)):
            results[f"{name}[{i}]"] = array
    return results


def run_threads(target, count):
    """Run target(i) in `count` threads; re-raise the first exception any of them raised."""
    errors = []

    def guarded(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: B902 -- reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# ----------------------------------------------------------------------------- the GIL

@pytest.fixture(scope="module")
def long_calls():
    """{name: call} of every operator on shapes that take tens of milliseconds on one thread."""
    rng = np.random.default_rng(5)
    x, weight = rng.standard_normal((32, 32, 32, 32)), rng.standard_normal((64, 32, 3, 3))
    grad_y = rng.standard_normal((32, 64, 32, 32))
    xp = rng.standard_normal((16, 32, 64, 64))  # pooled with 8x8 windows at stride 1
    positive, grad_p = np.abs(xp), rng.standard_normal((16, 32, 57, 57))
    return {
        "conv2d": lambda: F.conv2d(x, weight, padding=1, activation="relu"),
        "conv2d_backward": lambda: F.conv2d_backward(grad_y, x, weight, padding=1),
        "max_pool2d": lambda: F.max_pool2d(xp, 8, 1),
        "max_pool2d_backward": lambda: F.max_pool2d_backward(grad_p, xp, 8, 1),
        "avg_pool2d": lambda: F.avg_pool2d(xp, 8, 1),
        "avg_pool2d_backward": lambda: F.avg_pool2d_backward(grad_p, xp, 8, 1),
        "lp_pool2d": lambda: F.lp_pool2d(positive, 2, 8, 1),
        "lp_pool2d_backward": lambda: F.lp_pool2d_backward(grad_p[:8], positive[:8], 1.5, 8, 1),
    }


@pytest.mark.parametrize("name", ["conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
                                  "avg_pool2d_backward", "lp_pool2d", "lp_pool2d_backward"])
def test_kernels_release_the_gil(name, long_calls):
    """A thread that only counts must make progress while one kernel call runs (it is given two
    chances, as the OS may be slow to schedule it). With the GIL held it could not: the
    interpreter hands the GIL over only between bytecodes, and then only every switch interval
    (20 ms here), so the check passes wrongly only if such a switch falls in the microseconds
    between reading the counter and entering the kernel."""
    call = long_calls[name]
    cconv.set_num_threads(1)  # leave a core to the counting thread
    counter, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.02)
    thread = threading.Thread(target=count)
    thread.start()
    try:
        call()
        progress = []
        for _ in range(2):
            before = counter[0]
            call()
            progress.append(counter[0] - before)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert max(progress) > 0, f"{name} held the GIL: the counting thread advanced {progress}"


# ----------------------------------------------------------------------------- threads at once

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_four_threads_at_once_match_one_after_another(dtype):
    cconv.set_num_threads(2)
    data = [inputs(seed, dtype) for seed in range(4)]
    expected = [all_results(a) for a in data]
    got = [[] for _ in data]
    start = threading.Barrier(4)

    def work(i):
        start.wait()
        for repeat in range(3):
            got[i].append(all_results(data[i], rotate=i + repeat))

    run_threads(work, 4)
    for i, runs in enumerate(got):
        for results in runs:
            for name, want in expected[i].items():
                assert np.array_equal(results[name], want), f"thread {i}: {name} differs from the serial result"


def test_set_num_threads_from_other_threads_is_safe():
    """Two threads compute while two others keep changing the thread count (None, -1, 1..4) and
    reading it back: no error, every result right (to rounding: the count changes the order in
    which the weight gradient's partial sums are added)."""
    cconv.set_num_threads(1)
    data = [inputs(seed) for seed in range(2)]
    expected = [all_results(a) for a in data]
    done = threading.Event()
    counts_seen = set()

    def compute(i):
        try:
            for repeat in range(6):
                for name, got in all_results(data[i], rotate=repeat).items():
                    assert_close(got, expected[i][name], np.float64, name, tol=1e-12)
        finally:
            done.set()

    def change(i):
        settings = [None, -1, 1, 2, 3, 4]
        step = 0
        while not done.is_set():
            cconv.set_num_threads(settings[(step + i) % len(settings)])
            counts_seen.add(cconv.get_num_threads())
            step += 1

    run_threads(lambda i: compute(i) if i < 2 else change(i), 4)
    assert counts_seen and all(isinstance(n, int) and n >= 1 for n in counts_seen)


# ----------------------------------------------------------------------------- nested parallelism

CCONV_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives

SCRIPT_HEAD = """
import numpy as np
import cconv
from cconv import functional as F


def work(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16, 24, 24))  # enough work for 2 threads
    weight = rng.standard_normal((32, 16, 3, 3))
    y = F.conv2d(x, weight, padding=1)
    grads = F.conv2d_backward(y, x, weight, padding=1)
    pooled = F.max_pool2d(x, 2)
    return [y, *grads, pooled, F.avg_pool2d_backward(pooled, x, 2)], cconv.get_num_threads()


def check(results):
    for seed, (arrays, _) in enumerate(results):
        for got, want in zip(arrays, work(seed)[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


if __name__ == "__main__":
"""


def run_script(body, directory, timeout=60):
    """Run SCRIPT_HEAD + `body` (the main block) as a script file in `directory` (not the source
    tree, whose cconv may be unbuilt), in a new process group. Returns (exit status, output);
    the status is None when the script had not finished after `timeout` seconds, and the whole
    group is then killed, so that no deadlocked worker outlives the test."""
    path = directory / "nested.py"
    path.write_text(SCRIPT_HEAD + textwrap.indent(textwrap.dedent(body), "    "))
    env = dict(os.environ, PYTHONPATH=CCONV_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True, env=env, cwd=directory)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output


def assert_finished(status, output):
    assert status is not None, f"deadlock: no result before the timeout\n{output}"
    assert status == 0, f"exit status {status}\n{output}"
    assert output.rstrip().endswith("ok"), output


def test_inside_a_thread_pool_executor(tmp_path):
    """Eight tasks on four pool threads, each kernel with cconv's default thread count."""
    assert_finished(*run_script("""
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(work, range(8)))
        check(results)
        print("ok")
    """, tmp_path))


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_inside_joblib_workers(backend, tmp_path):
    """joblib's loky (process) workers get cconv.get_num_threads() = cores // workers (joblib
    limits OpenMP in them), so together they use no more threads than there are cores."""
    pytest.importorskip("joblib")
    assert_finished(*run_script(f"""
        import os
        from joblib import Parallel, delayed
        cconv.set_num_threads(2)
        work(0)  # the parent has run parallel kernels before the workers start
        cconv.set_num_threads(None)
        results = Parallel(n_jobs=2, backend={backend!r})(delayed(work)(seed) for seed in range(4))
        check(results)
        if {backend!r} == "loky":
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            threads = max(n for _, n in results)
            assert 2 * threads <= max(cores, 2), f"{{threads}} threads in each of 2 workers on {{cores}} cores"
        print("ok")
    """, tmp_path))


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_inside_multiprocessing_workers_after_parallel_kernels(method, tmp_path):
    """The parent runs 2-thread kernels first, then a pool of 2 workers runs kernels with cconv's
    default thread count. With 'fork' this deadlocked in libgomp until cconv made forked
    children single-threaded (cconv/_threads.py)."""
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    assert_finished(*run_script(f"""
        import multiprocessing
        cconv.set_num_threads(2)
        work(0)
        cconv.set_num_threads(None)
        with multiprocessing.get_context({method!r}).Pool(2) as pool:
            results = pool.map(work, range(4))
        check(results)
        print("ok")
    """, tmp_path, timeout=6 if method == "fork" else 60))  # fork: normally done in 1 s

