"""Data-parallel cost over MPI: allreduce time against gradient size, and the training step time
of LeNet-5 and the MNIST CNN with cconv.distributed, one thread per rank; then an on-paper
extrapolation of the speed-up to 8, 32 and 128 ranks.

    python benchmarks/bench_allreduce.py                       # 1 rank
    mpirun -n 2 python benchmarks/bench_allreduce.py --threads 1   # 2 ranks (Open MPI as root:
                                                               #   add --allow-run-as-root)

Model (data-parallel, fixed per-rank batch B, no overlap of communication with the backward
pass): step(N) = compute(B) + allreduce(N, S), S = gradient bytes, with a ring allreduce
allreduce(N, S) = 2 (N-1) alpha + 2 (N-1)/N S / bandwidth. Throughput speed-up over one rank:
N compute / (compute + allreduce(N, S)). compute is measured here at 1 rank; alpha and bandwidth
are either taken from the allreduce sweep measured here (shared memory between ranks on one
host: alpha from the smallest message, bandwidth the median bus bandwidth of messages of 400 KB
and more) or assumed for cluster interconnects (printed with the table). On a machine with
fewer free cores than ranks, the measured multi-rank step time includes the ranks' contention.
"""
import argparse
import statistics
import time

import numpy as np
from mpi4py import MPI

import cconv
from cconv.bench import cconv_network
from cconv.distributed import DistributedTrainer

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
NETWORKS = ("lenet5", "mnist")
# (name, alpha seconds, bandwidth bytes/s): per-message latency and effective per-link bandwidth
INTERCONNECTS = [("10 GbE (TCP)", 30e-6, 1.1e9), ("100 Gb/s InfiniBand EDR", 2e-6, 11e9)]


def say(text=""):
    if RANK == 0:
        print(text, flush=True)


def allreduce_time(floats, repeats):
    """Median seconds of one in-place float32 Allreduce of `floats` values (barrier before each)."""
    buf = np.ones(floats, np.float32)
    times = []
    for i in range(repeats + 2):
        COMM.Barrier()
        start = time.perf_counter()
        COMM.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        elapsed = COMM.allreduce(time.perf_counter() - start, op=MPI.MAX)  # the slowest rank
        if i >= 2:
            times.append(elapsed)
    return statistics.median(times)


def step_time(name, batch_size, steps, repeats, comm=COMM):
    """Median seconds per DistributedTrainer step over `comm` (SGD momentum, batch_size per
    rank); the gradient size in float32 values."""
    model = cconv_network(name)
    size = 32 if name == "lenet5" else 28
    rng = np.random.default_rng(0)
    n = steps * batch_size * comm.Get_size()
    x = rng.random((n, 1, size, size), dtype=np.float32)
    y = rng.integers(0, 10, n)
    trainer = DistributedTrainer(model, optimizer=cconv.optim.SGD(0.01, momentum=0.9), comm=comm)
    times = []
    for i in range(repeats + 1):
        comm.Barrier()
        start = time.perf_counter()
        trainer.fit(x, y, epochs=1, batch_size=batch_size, seed=0, verbose=0)
        if i:
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times), model.count_params(trainable_only=True)


def alone_on_rank_0(fn):
    """fn() on rank 0 while the other ranks sleep (MPI's blocking waits spin and would take
    the CPU from it); rank 0's result, on every rank."""
    result = fn() if RANK == 0 else None
    request = COMM.Ibarrier()
    while not request.Test():
        time.sleep(0.005)
    return COMM.bcast(result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="kernel threads per rank (default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="per-rank batch (default 64)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed epoch (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs (default 3)")
    args = parser.parse_args()
    cconv.set_num_threads(args.threads)
    say(f"{SIZE} rank(s) x {args.threads} thread(s), {MPI.Get_library_version().splitlines()[0]}")

    say("\nallreduce, float32 in place, median (us) and bus bandwidth 2(N-1)/N S / t")
    say(f"{'values':>10} {'bytes':>10} {'time us':>10} {'GB/s':>7}")
    sweep, links = [], list(INTERCONNECTS)
    for floats in (1_000, 10_000, 61_706, 100_000, 421_642, 1_000_000, 4_000_000):
        t = allreduce_time(floats, repeats=20 if floats <= 500_000 else 6)
        sweep.append((4 * floats, t))
        bus = 2 * (SIZE - 1) / SIZE * 4 * floats / t / 1e9 if SIZE > 1 else float("nan")
        say(f"{floats:>10,} {4 * floats:>10,} {t * 1e6:>10.1f} {bus:>7.2f}")
    if SIZE > 1:  # ring: alpha from the smallest message, bandwidth from those of 400 KB and more
        alpha = sweep[0][1] / (2 * (SIZE - 1))
        bandwidth = statistics.median(2 * (SIZE - 1) / SIZE * s / t for s, t in sweep if s >= 400_000)
        say(f"model fitted: alpha {alpha * 1e6:.2f} us, bandwidth {bandwidth / 1e9:.2f} GB/s")
        links.insert(0, ("measured here", alpha, bandwidth))

    say(f"\ntraining step, per-rank batch {args.batch_size}, SGD momentum, median over "
        f"{args.repeats} epochs of {args.steps} steps")
    say(f"{'network':<8} {'params':>8} {'step ms':>8} {'allreduce ms':>13} {'img/s (all ranks)':>18}")
    measured = []
    for name in NETWORKS:
        t, params = step_time(name, args.batch_size, args.steps, args.repeats)
        comm = allreduce_time(params + 3, repeats=10)
        compute = t if SIZE == 1 else alone_on_rank_0(
            lambda: step_time(name, args.batch_size, args.steps, args.repeats, MPI.COMM_SELF)[0])
        measured.append((name, params, compute))
        say(f"{name:<8} {params:>8,} {t * 1e3:>8.2f} {comm * 1e3:>13.3f} {SIZE * args.batch_size / t:>18,.0f}"
            + (f"   (1 rank alone: {compute * 1e3:.2f} ms)" if SIZE > 1 else ""))

    say("\non paper: speed-up over 1 rank = N c / (c + 2(N-1) alpha + 2(N-1)/N S / bandwidth), "
        "c = step time of 1 rank alone (measured above)")
    say(f"{'network':<8} {'c ms':>6} {'link (alpha, bandwidth)':<44} {'N=8':>6} {'N=32':>6} {'N=128':>6}")
    for name, params, compute in measured:
        for (label, alpha, bandwidth), (_, cells) in zip(links, extrapolate(compute, params, links)):
            link = f"{label} ({alpha * 1e6:.0f} us, {bandwidth / 1e9:.1f} GB/s)"
            say(f"{name:<8} {compute * 1e3:>6.1f} {link:<44} " + " ".join(f"{c:>6.1f}" for c in cells))


def extrapolate(compute, params, links):
    """Speed-up over one rank at 8, 32, 128 ranks for each (name, alpha, bandwidth) in links."""
    rows = []
    for label, alpha, bandwidth in links:
        cells = []
        for n in (8, 32, 128):
            comm = 2 * (n - 1) * alpha + 2 * (n - 1) / n * 4 * params / bandwidth
            cells.append(n * compute / (compute + comm))
        rows.append((label, cells))
    return rows


if __name__ == "__main__":
    main()
