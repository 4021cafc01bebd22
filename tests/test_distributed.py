"""Tests of cconv.distributed (data-parallel training over MPI).

The MPI tests start `mpirun -n N python tests/test_distributed.py MODE ...` (this file is also
the worker script, see worker() at the bottom) with one OpenMP thread per rank, and compare what
the ranks wrote with a single-process Trainer run here. They skip where mpirun or mpi4py is
missing. The sampler and checkpoint tests need no MPI.
"""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import cconv
from cconv.distributed import ShardedSampler, load_checkpoint, save_checkpoint
from cconv.layers import Conv2D, Dense, Flatten, MaxPool2D

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives

MPIRUN = shutil.which("mpirun")
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(MPIRUN is None or not HAVE_MPI4PY,
                               reason="needs mpirun (e.g. apt-get install openmpi-bin libopenmpi-dev) "
                                      "and mpi4py (pip install 'cconv[mpi]')")
WORKER = os.path.abspath(__file__)  # this file, run by mpirun
TIMEOUT = 30  # seconds: every MPI job must end by then, a failing one included


def small_model(seed=1):
    """A conv-pool-dense net for the 8x8 digits, float64 so that rounding stays far below the
    differences the equivalence tests look for."""
    return cconv.Sequential([Conv2D(4, 3, padding=1, activation="relu"), MaxPool2D(2), Flatten(),
                             Dense(16, activation="relu"), Dense(10)],
                            input_shape=(1, 8, 8), dtype="float64", seed=seed)


def digits(n):
    (x, y), _ = cconv.datasets.load_digits()
    return x[:n], y[:n]


def optimizer(name):
    return cconv.optim.SGD(0.1, momentum=0.9) if name == "sgd" else cconv.optim.Adam(3e-3)


def reference_weights(n, batch_size, epochs, opt, seed=5):
    """The weights one process reaches with the plain Trainer."""
    cconv.set_num_threads(1)
    model = small_model()
    x, y = digits(n)
    cconv.Trainer(model, optimizer=optimizer(opt)).fit(x, y, epochs=epochs, batch_size=batch_size,
                                                      seed=seed, verbose=0)
    return model.state_dict()


def mpirun(ranks, *args, timeout=TIMEOUT):
    """Run this file's worker on `ranks` ranks; the CompletedProcess (TimeoutExpired if it hangs)."""
    flags = []
    if "Open MPI" in subprocess.run([MPIRUN, "--version"], capture_output=True, text=True).stdout:
        flags.append("--oversubscribe")  # more ranks than cores (MPICH's default)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--allow-run-as-root")
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    # cwd: not the source tree, whose cconv/ (without built extensions) `python -m` would import
    return subprocess.run([MPIRUN, *flags, "-n", str(ranks), sys.executable, *args], env=env,
                          cwd=os.path.dirname(WORKER), capture_output=True,
                          text=True, timeout=timeout)


def assert_same_weights(got, expected):
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-9, atol=1e-12, err_msg=key)


# -- without MPI ------------------------------------------------------------------------------
@pytest.mark.parametrize("n, batch_size, size", [(125, 4, 3), (121, 4, 3), (10, 4, 3), (7, 1, 2)])
def test_sampler_covers_every_sample_once_per_epoch(n, batch_size, size):
    samplers = [ShardedSampler(n, batch_size, rank, size, seed=3) for rank in range(size)]
    for epoch in (0, 1, 4):
        steps = [s.epoch(epoch) for s in samplers]
        assert len({len(st) for st in steps}) == 1  # every rank takes the same number of steps
        # a global batch is this rank order's shards concatenated, and sizes differ by at most one
        order = np.concatenate([np.concatenate([st[k][0] for st in steps]) for k in range(len(steps[0]))])
        np.testing.assert_array_equal(order, np.random.default_rng(3).permutation(n) if epoch == 0
                                      else samplers[0].order(epoch))
        for k in range(len(steps[0])):
            sizes = [len(st[k][0]) for st in steps]
            assert sum(sizes) == steps[0][k][1] and max(sizes) - min(sizes) <= 1
            assert sum(sizes) == min(size * batch_size, n - k * size * batch_size)


def test_sampler_epochs_follow_the_trainers_generator():
    """Epoch e's order is the e-th permutation of default_rng(seed), whatever order asked in."""
    rng = np.random.default_rng(9)
    expected = [rng.permutation(50) for _ in range(4)]
    sampler = ShardedSampler(50, 5, 0, 2, seed=9)
    for epoch in (3, 0, 2, 1, 3):  # a resumed run asks for a later epoch first
        np.testing.assert_array_equal(sampler.order(epoch), expected[epoch])
    with pytest.raises(ValueError, match="rank"):
        ShardedSampler(50, 5, 2, 2, seed=0)


def test_checkpoint_round_trip(tmp_path):
    model = small_model()
    opt = cconv.optim.Adam(1e-3)
    x, y = digits(40)
    cconv.Trainer(model, optimizer=opt).fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model, opt, epoch=1, seed=4, history=[(0, {"loss": 2.5})])
    ck = load_checkpoint(path)
    assert (ck["epoch"], ck["seed"], ck["history"]) == (1, 4, [(0, {"loss": 2.5})])
    assert_same_weights(ck["model"], model.state_dict())
    assert ck["optimizer"]["type"] == "Adam" and ck["optimizer"]["iterations"] == 3
    for index, (m, v) in opt.state.items():
        np.testing.assert_array_equal(ck["optimizer"]["state"][index][0], m)
        np.testing.assert_array_equal(ck["optimizer"]["state"][index][1], v)
    model.save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "model.npz")


def test_missing_mpi4py_names_the_extra_and_import_cconv_never_loads_it():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import cconv, cconv.distributed\n"
            "assert 'mpi4py.MPI' not in sys.modules\n"
            "try:\n    cconv.distributed.DistributedTrainer(cconv.Sequential([cconv.layers.Dense(2)]))\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=ROOT), cwd=os.path.dirname(WORKER))
    assert out.returncode == 0, out.stderr
    assert 'pip install "cconv[mpi]"' in out.stdout


# -- over MPI ---------------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_match_one_process_with_the_global_batch(tmp_path, ranks):
    # 125 samples: 2 ranks x 4 -> 15 full steps + one of 5 (shards 3 and 2); 3 ranks x 4 -> 10
    # full steps + one of 5 (shards 2, 2, 1); 2 epochs = 32 / 22 steps of SGD with momentum
    out = tmp_path / "w.npz"
    job = mpirun(ranks, WORKER, "train", str(out), "125", "4", "2", "sgd")
    assert job.returncode == 0, job.stderr
    with np.load(out) as data:
        got = dict(data)
    expected = reference_weights(125, ranks * 4, 2, "sgd")
    assert_same_weights(got, expected)
    # the comparison can tell: one process with the per-rank batch ends far from there
    other = reference_weights(125, 4, 2, "sgd")
    assert max(np.abs(other[k] - expected[k]).max() for k in expected) > 1e-3


def segmentation_graph(seed):
    """A graph Model (a branch merged by Add and Concatenate) labelling each pixel of the
    digits bright or dark, float64."""
    from cconv.layers import Add, Concatenate
    inputs = cconv.Input((1, 8, 8), dtype="float64")
    a = Conv2D(4, 3, padding=1, activation="relu")(inputs)
    b = Add()([a, Conv2D(4, 3, padding=1)(a)])
    outputs = Conv2D(2, 1)(Concatenate()([b, inputs]))
    return cconv.Model(inputs, outputs, seed=seed)


def segmentation_digits(n):
    x, _ = digits(n)
    return x, (x[:, 0] > 0.3).astype(np.int64)


@needs_mpi
def test_graph_model_with_segmentation_metrics_on_ranks_matches_one_process(tmp_path):
    out = tmp_path / "g.npz"
    job = mpirun(2, WORKER, "graph", str(out))
    assert job.returncode == 0, job.stderr
    with np.load(out) as data:
        got = dict(data)
    cconv.set_num_threads(1)
    model = segmentation_graph(seed=1)
    x, y = segmentation_digits(90)
    trainer = cconv.Trainer(model, optimizer=optimizer("sgd"), metrics=["accuracy", "mean_iou"])
    history = trainer.fit(x, y, epochs=2, batch_size=8, seed=5, verbose=0)
    assert_same_weights({k: got[k] for k in model.state_dict()}, model.state_dict())
    for name in ("loss", "accuracy", "mean_iou"):
        np.testing.assert_allclose(got[f"history.{name}"], history[name], rtol=1e-9)
    logs = trainer.evaluate(x, y)
    np.testing.assert_allclose([got[f"eval.{k}"] for k in logs], list(logs.values()), rtol=1e-9)


@needs_mpi
def test_resume_on_another_rank_count(tmp_path):
    # 2 epochs on 2 ranks x 6, then the 3rd epoch on 3 ranks x 4 (the same global batch of 12;
    # 121 samples leave a last step of 1 sample: shards (1, 0) and (1, 0, 0)); Adam's moments
    # and step count travel in the checkpoint
    ck, out = tmp_path / "ck.npz", tmp_path / "w.npz"
    job = mpirun(2, WORKER, "train", str(tmp_path / "first.npz"), "121", "6", "2", "adam", str(ck))
    assert job.returncode == 0, job.stderr
    assert load_checkpoint(ck)["epoch"] == 2
    job = mpirun(3, WORKER, "train", str(out), "121", "4", "3", "adam", str(ck))
    assert job.returncode == 0, job.stderr
    state = load_checkpoint(ck)
    assert state["epoch"] == 3 and [e for e, _ in state["history"]] == [0, 1, 2]
    assert state["optimizer"]["iterations"] == 3 * 11
    with np.load(out) as data:
        got = dict(data)
    expected = reference_weights(121, 12, 3, "adam")
    assert_same_weights(got, expected)
    assert_same_weights(state["model"], expected)


@needs_mpi
def test_replicas_stay_identical_with_batchnorm_dropout_and_augment(tmp_path):
    # BatchNorm sees each rank's own shard, Dropout and the shifts draw per-rank numbers: the
    # parameters stay equal through the shared gradient, the running statistics through their
    # averaging at the end of the epoch
    job = mpirun(3, WORKER, "replicas", str(tmp_path / "r"))
    assert job.returncode == 0, job.stderr
    states = []
    for rank in range(3):
        with np.load(tmp_path / f"r.{rank}.npz") as data:
            states.append(dict(data))
    assert any("running_mean" in k and np.abs(v).max() > 1e-3 for k, v in states[0].items())
    for state in states[1:]:
        assert state.keys() == states[0].keys()
        for key in state:
            np.testing.assert_array_equal(state[key], states[0][key], err_msg=key)


@needs_mpi
def test_exception_on_one_rank_aborts_the_job_naming_it():
    job = mpirun(3, WORKER, "fail", "raise")
    assert job.returncode != 0
    assert "cconv.distributed: rank 2 of 3" in job.stderr
    assert "RuntimeError: injected failure" in job.stderr


@needs_mpi
def test_killed_rank_ends_the_job():
    job = mpirun(3, WORKER, "fail", "kill")  # TimeoutExpired (a failure) if the others hang
    assert job.returncode != 0
    assert "signal 9" in job.stderr or "Killed" in job.stderr, job.stderr


@needs_mpi
def test_cli_distributed(tmp_path):
    out, ck = tmp_path / "m.npz", tmp_path / "ck.npz"
    job = mpirun(2, "-m", "cconv", "train", "--distributed", "--epochs", "1", "--threads", "1",
                 "--batch-size", "16", "--out", str(out), "--checkpoint", str(ck), "--no-augment")
    assert job.returncode == 0, job.stderr
    assert job.stdout.count("Test accuracy:") == 1 and job.stdout.count("Total params") == 1  # rank 0 only
    assert "2 ranks x batch 16 = 32" in job.stdout
    accuracy = float(job.stdout.split("Test accuracy: ")[1].split()[0])
    model = cconv.load_model(out)
    (_, _), (xt, yt) = cconv.datasets.load_digits()
    assert accuracy == pytest.approx(np.mean(model.predict(xt).argmax(axis=1) == yt), abs=1e-4)
    assert accuracy > 0.5
    assert_same_weights(load_checkpoint(ck)["model"], model.state_dict())


# -- the worker, run by mpirun ----------------------------------------------------------------
def worker(mode, *args):
    from mpi4py import MPI

    from cconv.distributed import DistributedTrainer
    rank = MPI.COMM_WORLD.Get_rank()
    cconv.set_num_threads(1)
    if mode == "train":  # OUT N BATCH EPOCHS OPTIMIZER [CHECKPOINT]
        out, n, batch_size, epochs, opt = args[0], int(args[1]), int(args[2]), int(args[3]), args[4]
        checkpoint = args[5] if len(args) > 5 else None
        model = small_model(seed=1 if rank == 0 else 100 + rank)  # fit broadcasts rank 0's
        x, y = digits(n)
        trainer = DistributedTrainer(model, optimizer=optimizer(opt))
        trainer.fit(x, y, epochs=epochs, batch_size=batch_size, seed=5 if rank == 0 else rank,
                    verbose=0, checkpoint=checkpoint, resume=checkpoint is not None)
        if rank == 0:
            np.savez(out, **model.state_dict())
    elif mode == "replicas":  # OUT_PREFIX
        from cconv.layers import BatchNorm2D, Dropout, ReLU
        model = cconv.Sequential([Conv2D(4, 3, padding=1), BatchNorm2D(), ReLU(), MaxPool2D(2),
                                  Flatten(), Dropout(0.3), Dense(10)], input_shape=(1, 8, 8), seed=rank)
        x, y = digits(100)
        DistributedTrainer(model).fit(x, y, epochs=1, batch_size=8, verbose=0,
                                      augment=cconv.datasets.RandomShift(1))
        np.savez(f"{args[0]}.{rank}.npz", **model.state_dict())
    elif mode == "graph":  # OUT: a graph Model, per-pixel loss and metrics, 2 ranks x 4
        model = segmentation_graph(seed=1 if rank == 0 else 7)
        x, y = segmentation_digits(90)
        trainer = DistributedTrainer(model, optimizer=optimizer("sgd"), metrics=["accuracy", "mean_iou"])
        history = trainer.fit(x, y, epochs=2, batch_size=4, seed=5, verbose=0)
        logs = trainer.evaluate(x, y)
        if rank == 0:
            np.savez(args[0], **model.state_dict(), **{f"history.{k}": v for k, v in history.history.items()},
                     **{f"eval.{k}": v for k, v in logs.items()})
    elif mode == "fail":  # raise / kill on one rank at its 3rd step
        victim = 2 if args[0] == "raise" else 1

        class Fault(cconv.callbacks.Callback):
            def on_batch_end(self, batch, logs=None):
                if rank == victim and batch == 2:
                    if args[0] == "raise":
                        raise RuntimeError("injected failure")
                    os.kill(os.getpid(), signal.SIGKILL)

        x, y = digits(300)
        DistributedTrainer(small_model(), optimizer="sgd").fit(
            x, y, epochs=10_000, batch_size=4, verbose=0, callbacks=[Fault()])


if __name__ == "__main__":
    worker(*sys.argv[1:])
