"""Data-parallel training over MPI (mpi4py): DistributedTrainer, its sampler and checkpoints.

Needs mpi4py and an MPI library (`pip install "cconv[mpi]"`, e.g. with Debian's
`apt-get install openmpi-bin libopenmpi-dev`); mpi4py is imported only when a
DistributedTrainer is made, never by `import cconv`.

How it trains
-------------
Every rank (MPI process) holds a full replica of the model and the whole data set. fit():

- broadcasts rank 0's weights, optimizer state and seed, so every replica starts identical;
- splits every global batch of `ranks x batch_size` samples into one contiguous shard per rank
  (ShardedSampler): the e-th epoch's order is the e-th `permutation(n)` drawn from
  `numpy.random.default_rng(seed)`, the order a single-process `Trainer.fit(seed=seed)` with
  batch `ranks x batch_size` uses, so every sample is seen once per epoch across the ranks.
  The last global batch of an epoch is short when n is not a multiple of it: it is split into
  near-equal shards (sizes differ by at most one; a rank may get none);
- after each backward pass packs every gradient, scaled by (shard size / global batch size),
  into ONE contiguous buffer together with the shard's loss sum, its metrics' statistics
  (counts, see cconv.metrics) and a Ctrl-C flag, and sums it with one `Allreduce`: the result is exactly the gradient of the global
  batch's mean loss, whatever the shard sizes, plus the global metrics. N ranks with batch B
  therefore follow the same trajectory as one process with batch N*B and the same learning
  rate (to floating-point rounding);
- Dropout and `augment` draw from a per-rank generator seeded with (seed, epoch, rank);
- BatchNorm normalises with each rank's own shard statistics (as PyTorch's DDP without
  SyncBatchNorm); the running mean / variance are averaged over the ranks at every epoch end,
  so the replicas stay identical. With BatchNorm, N x B is therefore not bit-equivalent to one
  process with batch N*B;
- reduces the metrics (and `evaluate`, which shards the evaluation set) across the ranks, so
  callbacks see the same logs everywhere (EarlyStopping stops every rank together);
- prints the progress bar and writes checkpoints (and ModelCheckpoint files) on rank 0 only.

Checkpoints: `fit(..., checkpoint=PATH)` writes PATH after every epoch (rank 0, atomically):
weights, buffers, optimizer state, epochs done, seed and history. `fit(..., checkpoint=PATH,
resume=True, epochs=E)` continues from it up to epoch E (and starts afresh when PATH does not
exist yet); rank 0 reads it and broadcasts it, so any number of ranks can resume it (keep
ranks x batch_size the same to keep the same global batch).

Faults: an exception on any rank inside fit / evaluate (or inside `with abort_on_error():`)
prints "cconv.distributed: rank R of N (host) failed: ..." with its traceback and calls
`MPI.COMM_WORLD.Abort(1)`, which ends every rank. A rank that dies (killed, segfault) is noticed
by mpirun, which ends the others. TrainingDivergedError (a NaN/Inf loss) is not a fault: the
loss is the reduced one, so every rank raises it at the same step.

Launching
---------
One host:   mpirun -n 4 cconv train --distributed --threads 1
Several hosts (Open MPI): list them in a hostfile, one line per host with its slots (ranks):

    node1 slots=4
    node2 slots=4

    mpirun --hostfile hosts -n 8 --map-by ppr:2:node:PE=2 -x PATH -x OMP_NUM_THREADS=2 \\
        cconv train --distributed --threads 2 --data mnist:/data/mnist

(MPICH / Intel MPI: `mpiexec -f hosts -n 8 -ppn 2 ...`). Every host needs the same Python
environment and the data at the same path; the checkpoint lives on rank 0's host.

Threads: `--threads T` is the OpenMP thread count of each rank, so a host runs
(ranks per host) x T threads: keep that at most its cores (e.g. 16 cores: 16 ranks x 1 thread,
4 x 4 or 2 x 8; more ranks per host cost more allreduce traffic and memory, more threads per
rank cost a smaller batch per thread). Give each rank T cores: Open MPI binds each rank to ONE
core by default with 2 ranks or fewer (to a socket otherwise), which would stack a rank's T
threads on one core; `--map-by ppr:R:node:PE=T` (R ranks per node, T cores each) or
`--bind-to none` avoids that. `--report-bindings` shows the result.
"""
import contextlib
import json
import os
import socket
import sys
import traceback

import numpy as np

from cconv._args import as_int
from cconv._io import open_npz, save_npz_atomically
from cconv._paths import check_writable, naming_path
from cconv.callbacks import Callback, ModelCheckpoint
from cconv.trainer import History, StepResult, Trainer, TrainingDivergedError, split_validation

__all__ = ["DistributedTrainer", "ShardedSampler", "abort_on_error", "load_checkpoint",
           "save_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "cconv-checkpoint"
CHECKPOINT_VERSION = 1


def _mpi():
    """mpi4py's MPI module (initialises MPI on first use)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError('cconv.distributed needs mpi4py and an MPI library: pip install '
                          '"cconv[mpi]" (with e.g. apt-get install openmpi-bin libopenmpi-dev)') from exc
    return MPI


@contextlib.contextmanager
def abort_on_error(comm=None):
    """Turn an exception on any one rank into a job-wide abort: print which rank failed and
    why, then MPI Abort (every rank ends; mpirun exits non-zero). TrainingDivergedError, raised
    by every rank together, and a clean SystemExit pass through; with one rank every exception
    does."""
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    try:
        yield comm
    except TrainingDivergedError:
        raise
    except BaseException as exc:
        if comm.Get_size() == 1 or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            raise
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(f"{details}cconv.distributed: rank {comm.Get_rank()} of {comm.Get_size()} "
                         f"({socket.gethostname()}, pid {os.getpid()}) failed: "
                         f"{type(exc).__name__}: {exc}; aborting the job\n")
        sys.stderr.flush()
        comm.Abort(1)


def _shard(count, rank, size):
    """(start, stop) of rank's piece when `count` items are cut into `size` contiguous pieces
    whose sizes differ by at most one (the first count % size pieces are the longer ones)."""
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class ShardedSampler:
    """ShardedSampler(n, batch_size, rank, size, seed, shuffle=True)

    epoch(e) -> [(this rank's sample indices, global batch size), ...], one pair per step.
    Global batch k of epoch e is order[k*G:(k+1)*G] with G = size * batch_size and order the
    e-th permutation(n) drawn from default_rng(seed) (or arange(n) without shuffle); rank r
    takes its contiguous piece of it (see _shard). The same on every rank for the same seed,
    and independent of the rank count except through G.
    """

    def __init__(self, n, batch_size, rank, size, seed, shuffle=True):
        self.n = as_int(n, "n", 1)
        self.batch_size = as_int(batch_size, "batch_size", 1)
        self.size = as_int(size, "size", 1)
        self.rank = as_int(rank, "rank", 0)
        if self.rank >= self.size:
            raise ValueError(f"rank must be < size ({self.size}), got {self.rank}")
        self.seed = as_int(seed, "seed", 0)
        self.shuffle = bool(shuffle)
        self._rng, self._drawn = None, 0

    def order(self, epoch):
        """The sample order of epoch `epoch` (from 0)."""
        epoch = as_int(epoch, "epoch", 0)
        if not self.shuffle:
            return np.arange(self.n)
        if self._rng is None or self._drawn > epoch:
            self._rng, self._drawn = np.random.default_rng(self.seed), 0
        while self._drawn < epoch:  # skip the epochs before (a resumed run)
            self._rng.permutation(self.n)
            self._drawn += 1
        self._drawn += 1
        return self._rng.permutation(self.n)

    def epoch(self, epoch):
        order, step = self.order(epoch), self.size * self.batch_size
        steps = []
        for start in range(0, self.n, step):
            batch = order[start:start + step]
            lo, hi = _shard(len(batch), self.rank, self.size)
            steps.append((batch[lo:hi], len(batch)))
        return steps


# -- checkpoints ----------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer, epoch, seed, history=()):
    """Write a resumable checkpoint to `path` atomically: the model's parameters and buffers,
    the optimizer's state, `epoch` (epochs done), `seed` and `history` ([(epoch, logs), ...])."""
    path = os.fspath(path)
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    kinds = {}
    for index, value in optimizer.state.items():
        parts = value if isinstance(value, tuple) else (value,)
        kinds[str(index)] = len(parts) if isinstance(value, tuple) else 0
        for j, part in enumerate(parts):
            arrays[f"optim/{index}/{j}"] = part
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": int(epoch),
            "seed": int(seed), "optimizer": type(optimizer).__name__,
            "iterations": int(optimizer.iterations), "state": kinds,
            "history": [[int(e), {k: float(v) for k, v in logs.items()}] for e, logs in history]}
    arrays["meta"] = np.array(json.dumps(meta))
    with naming_path(path, "the checkpoint"):
        save_npz_atomically(path, arrays)


def load_checkpoint(path):
    """Read a checkpoint written by save_checkpoint: a dict with 'model' (a state_dict for
    Sequential.load_state_dict), 'optimizer' (type name, iterations, state), 'epoch', 'seed'
    and 'history'.

    Raises OSError (FileNotFoundError, IsADirectoryError, ...) when the file system cannot
    give the file, and ValueError when it is not an intact cconv checkpoint (not an archive,
    truncated, corrupt, missing or malformed entries)."""
    path = os.fspath(path)
    with open_npz(path, "cannot read checkpoint") as data:
        meta = json.loads(str(data["meta"]))
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT \
                or meta.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"not a version-{CHECKPOINT_VERSION} {CHECKPOINT_FORMAT} file")
        model = {k[6:]: data[k] for k in data.files if k.startswith("model/")}
        state = {}
        for index, parts in meta["state"].items():
            arrays = tuple(data[f"optim/{index}/{j}"] for j in range(max(parts, 1)))
            state[int(index)] = arrays if parts else arrays[0]
        return {"model": model, "epoch": as_int(meta["epoch"], "epoch", 0),
                "seed": as_int(meta["seed"], "seed", 0),
                "history": [(int(e), dict(logs)) for e, logs in meta["history"]],
                "optimizer": {"type": str(meta["optimizer"]),
                              "iterations": as_int(meta["iterations"], "iterations", 0), "state": state}}


class _EpochCheckpoint(Callback):
    """Records every epoch's logs and, on rank 0, writes the checkpoint after each epoch."""

    def __init__(self, owner, path, history):
        self.owner, self.path, self.history = owner, path, list(history)

    def on_epoch_end(self, epoch, logs=None):
        self.history.append((epoch, dict(logs or {})))
        if self.path is not None and self.owner.rank == 0:
            save_checkpoint(self.path, self.owner.model, self.owner.optimizer, epoch + 1,
                            self.owner._seed, self.history)


class DistributedTrainer(Trainer):
    """DistributedTrainer(model, loss='cross_entropy', optimizer='adam', comm=None, metrics=None)

    A Trainer whose fit / evaluate run data-parallel over the ranks of `comm` (default
    MPI.COMM_WORLD); call them on every rank with the same arguments. fit's `batch_size` is
    per rank (the global batch is ranks x batch_size); see the module docstring.
    """

    def __init__(self, model, loss="cross_entropy", optimizer="adam", comm=None, metrics=None):
        super().__init__(model, loss, optimizer, metrics)
        MPI = _mpi()
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._start_epoch, self._seed, self._sampler = 0, 0, None

    def log(self, message):
        if self.rank == 0:
            super().log(message)

    def fit(self, X, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, seed=None,
            verbose=1, callbacks=None, augment=None, file=None, checkpoint=None, resume=False,
            validation_split=0.0):
        """Trainer.fit on every rank; `batch_size` per rank. checkpoint: a path written by rank 0
        after every epoch; resume=True continues from it when it exists (its seed then wins)."""
        with abort_on_error(self.comm):
            epochs, batch_size, seed, callbacks = self._check_fit_args(epochs, batch_size, verbose, seed,
                                                                       augment, callbacks)
            if checkpoint is not None:
                checkpoint = os.fspath(checkpoint)
                if self.rank == 0:  # the writer: fail now, not after the first epoch
                    check_writable(checkpoint, "the checkpoint")
            elif resume:
                raise ValueError("resume=True needs a checkpoint path")
            X, y, validation_data = split_validation(X, y, validation_split, validation_data)
            X, y = self._check_data(X, y)
            validation_data = self._check_validation_data(validation_data)
            return self._fit_ranks(X, y, epochs, batch_size, validation_data, shuffle, seed, verbose,
                                   callbacks, augment, file, checkpoint, resume)

    def _fit_ranks(self, X, y, epochs, batch_size, validation_data, shuffle, seed, verbose, callbacks,
                   augment, file, checkpoint, resume):
        """fit for checked arguments: set every rank up alike, then train."""
        comm, model = self.comm, self.model
        counts = comm.allgather(X.shape[0])
        if len(set(counts)) != 1:
            raise ValueError(f"every rank must hold the same training set; samples per rank: {counts}")
        if seed is None and self.rank == 0:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)  # < 2**31

        # rank 0's weights, optimizer state and seed (from the checkpoint when resuming) for all
        state = None
        if self.rank == 0:
            if resume and os.path.exists(checkpoint):
                state = load_checkpoint(checkpoint)
            else:
                state = {"model": model.state_dict(), "epoch": 0, "seed": seed, "history": [],
                         "optimizer": {"type": type(self.optimizer).__name__,
                                       "iterations": self.optimizer.iterations,
                                       "state": self.optimizer.state}}
        state = comm.bcast(state, root=0)
        if state["epoch"] and verbose:
            self._file = sys.stdout if file is None else file
            self.log(f"Resumed from checkpoint {checkpoint} at epoch {state['epoch']} (epochs done; "
                     f"training continues up to epoch {epochs})")
        model.load_state_dict(state["model"])
        self._load_optimizer(state["optimizer"])
        self._start_epoch, self._seed = state["epoch"], state["seed"]
        self._sampler = ShardedSampler(X.shape[0], batch_size, self.rank, self.size, self._seed, shuffle)

        params = model.parameters()
        # gradients, then the loss sum, the metrics' statistics and the Ctrl-C flag
        self._stats = self._statistics_size()
        self._buffer = np.zeros(sum(p.size for p in params) + self._stats + 2, dtype=model.dtype)
        offsets = np.cumsum([0] + [p.size for p in params])
        self._views = [self._buffer[a:b].reshape(p.shape) for a, b, p in zip(offsets, offsets[1:], params)]

        if self.rank != 0:  # one writer for model files
            callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
        recorder = _EpochCheckpoint(self, checkpoint, state["history"])
        history = self._fit_checked(X, y, epochs, batch_size, validation_data, shuffle, self._seed,
                                    verbose if self.rank == 0 else 0, callbacks + [recorder], augment, file)
        full = History()
        for epoch, logs in recorder.history:
            full.append(epoch, logs)
        full.interrupted = history.interrupted
        return full

    def _load_optimizer(self, saved):
        if saved["type"] != type(self.optimizer).__name__:
            raise ValueError(f"the checkpoint holds {saved['type']} state but the optimizer is "
                             f"{type(self.optimizer).__name__}")
        params = self.model.parameters()
        state = {}
        for index, value in saved["state"].items():
            parts = value if isinstance(value, tuple) else (value,)
            if not 0 <= index < len(params) or any(p.shape != params[index].shape for p in parts):
                raise ValueError(f"the optimizer state for parameter {index} does not match the model")
            parts = tuple(np.array(p, dtype=params[index].dtype) for p in parts)
            state[index] = parts if isinstance(value, tuple) else parts[0]
        self.optimizer.state, self.optimizer.iterations = state, int(saved["iterations"])

    # hooks of Trainer.fit
    def _samples_per_step(self, batch_size):
        return batch_size * self.size

    def _first_epoch(self):
        return self._start_epoch

    def _epoch_steps(self, epoch, n, batch_size, shuffle, rng):
        """This rank's shards of the epoch's global batches, with the global batch sizes, and a
        generator of its own for Dropout and augment."""
        rng = np.random.default_rng([self._seed, epoch, self.rank])
        self.model.set_rng(rng)
        return self._sampler.epoch(epoch), rng

    def _train_step(self, X, y, step, augment, rng, interrupt):
        """The forward and backward pass of this rank's shard, then one Allreduce of the
        gradients (scaled by shard size / global batch size), the metrics and the Ctrl-C flags."""
        MPI = _mpi()
        index, total = step
        buf, loss_at = self._buffer, -self._stats - 2
        if len(index):
            loss, grad, statistics, count = self._forward_batch(X, y, index, augment, rng)
            self.model.backward(grad, need_input_grad=False)
            scale = self.model.dtype.type(count / total)
            for view, g in zip(self._views, self.model.gradients()):
                np.multiply(g, scale, out=view)
            buf[loss_at] = loss * count
            buf[loss_at + 1:-1] = statistics
            buf[-1] = interrupt.raised
        else:  # a short last batch left this rank nothing: it adds zeros
            buf[:] = 0
            buf[-1] = interrupt.raised
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        statistics = buf[loss_at + 1:-1].astype(np.float64)
        return StepResult(float(buf[loss_at]) / total, float(buf[loss_at]), statistics, total,
                          self._views, bool(buf[-1] > 0))

    def _interrupted(self, result, interrupt):
        """Ctrl-C on any rank (summed by the step's Allreduce): every rank stops after this step.
        A Ctrl-C that comes after the Allreduce is summed in the next step's, so that the ranks
        stop together."""
        if result.stop:
            interrupt.raised = True
        return result.stop

    def _end_epoch(self):
        self._average_buffers()

    def _average_buffers(self):
        """Average the non-trainable state (BatchNorm running statistics) over the ranks."""
        buffers = list(self.model.named_buffers().values())
        if not buffers or self.size == 1:
            return
        MPI = _mpi()
        packed = np.concatenate([b.ravel() for b in buffers]).astype(np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, packed, op=MPI.SUM)
        packed /= self.size
        start = 0
        for b in buffers:
            b[...] = packed[start:start + b.size].reshape(b.shape)
            start += b.size

    def evaluate(self, X, y, batch_size=256):
        """Trainer.evaluate over the whole (X, y), each rank evaluating one shard; the same
        result on every rank."""
        with abort_on_error(self.comm):
            return super().evaluate(X, y, batch_size)

    def _evaluate(self, X, y, batch_size):
        """Trainer._evaluate of this rank's shard, summed over the ranks."""
        MPI = _mpi()
        lo, hi = _shard(X.shape[0], self.rank, self.size)
        sums = np.zeros(1 + self._statistics_size())
        if hi > lo:
            loss_sum, statistics = self._evaluate_sums(X[lo:hi], y[lo:hi], batch_size)
            sums[0], sums[1:] = loss_sum, statistics
        self.comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        return self._epoch_logs(float(sums[0]), sums[1:], X.shape[0])
