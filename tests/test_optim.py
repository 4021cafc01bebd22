"""Tests of cconv.optim: SGD / Adam / AdamW steps against PyTorch's optimizers (and a NumPy
transcription of the update rules when torch is missing), learning-rate schedules, errors."""
import math

import numpy as np
import pytest

from cconv import optim


def run_steps(optimizer, start, grads):
    params = [p.copy() for p in start]
    for step_grads in grads:
        optimizer.step(params, step_grads)
    return params


def make_problem(rng, steps=6, dtype=np.float64):
    start = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in start] for _ in range(steps)]
    return start, grads


def torch_steps(torch_cls, kwargs, start, grads):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(p, requires_grad=True) for p in start]
    opt = torch_cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (optim.SGD, "SGD", dict(lr=0.1)),
    (optim.SGD, "SGD", dict(lr=0.05, momentum=0.9)),
    (optim.SGD, "SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    (optim.Adam, "Adam", dict(lr=0.01)),
    (optim.Adam, "Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (optim.AdamW, "AdamW", dict(lr=0.01)),
    (optim.AdamW, "AdamW", dict(lr=0.03, weight_decay=0.2, betas=(0.5, 0.9))),
])
def test_optimizers_match_torch(ours, theirs, kwargs, rng):
    torch = pytest.importorskip("torch")
    start, grads = make_problem(rng)
    got = run_steps(ours(**kwargs), start, grads)
    torch_kwargs = dict(kwargs)
    if "betas" in torch_kwargs:
        torch_kwargs["betas"] = tuple(torch_kwargs["betas"])
    expected = torch_steps(getattr(torch.optim, theirs), torch_kwargs, start, grads)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_adam_matches_written_out_rule(rng):
    start, grads = make_problem(rng, steps=3)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p, m, v = start[0].copy(), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g[0]
        v = b2 * v + (1 - b2) * g[0] ** 2
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    got = run_steps(optim.Adam(lr=lr), start, grads)[0]
    np.testing.assert_allclose(got, p, rtol=1e-12)


def test_updates_are_in_place_and_keep_float32(rng):
    start, grads = make_problem(rng, dtype=np.float32)
    for opt in (optim.SGD(0.1, momentum=0.9), optim.Adam(), optim.AdamW()):
        params = [p.copy() for p in start]
        ids = [id(p) for p in params]
        for g in grads:
            opt.step(params, g)
        assert [id(p) for p in params] == ids
        assert all(p.dtype == np.float32 for p in params)
        assert not np.array_equal(params[0], start[0])


def test_reset_forgets_state(rng):
    start, grads = make_problem(rng)
    opt = optim.Adam(0.01)
    first = run_steps(opt, start, grads)
    opt.reset()
    assert opt.iterations == 0
    again = run_steps(opt, start, grads)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)


def test_schedules():
    step = optim.StepLR(step_size=3, gamma=0.5)
    assert [step(e, 0.8) for e in range(7)] == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]
    cosine = optim.CosineLR(t_max=4, min_lr=0.1)
    values = [cosine(e, 1.1) for e in range(6)]
    assert values[0] == pytest.approx(1.1) and values[2] == pytest.approx(0.6)
    assert values[4] == pytest.approx(0.1) and values[5] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert cosine(1, 1.1) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi / 4)))


def test_get_by_name():
    assert isinstance(optim.get("Adam"), optim.Adam)
    assert optim.get("sgd", lr=0.3).lr == 0.3
    opt = optim.AdamW()
    assert optim.get(opt) is opt and opt.weight_decay == 0.01
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.get("rmsprop")
    with pytest.raises(TypeError):
        optim.get(3)


@pytest.mark.parametrize("make, error", [
    (lambda: optim.SGD(lr=0), ValueError),
    (lambda: optim.SGD(lr=-1), ValueError),
    (lambda: optim.SGD(lr="fast"), TypeError),
    (lambda: optim.SGD(lr=float("nan")), TypeError),
    (lambda: optim.SGD(0.1, momentum=1.0), ValueError),
    (lambda: optim.SGD(0.1, nesterov=True), ValueError),
    (lambda: optim.Adam(betas=(0.9,)), TypeError),
    (lambda: optim.Adam(betas=(0.9, 1.0)), ValueError),
    (lambda: optim.Adam(weight_decay=-0.1), ValueError),
    (lambda: optim.StepLR(0), ValueError),
    (lambda: optim.CosineLR(0), ValueError),
])
def test_bad_arguments(make, error):
    with pytest.raises(error):
        make()


def test_step_checks_lists(rng):
    opt = optim.SGD(0.1)
    with pytest.raises(ValueError, match="2 parameters but 1"):
        opt.step([np.zeros(2), np.zeros(3)], [np.zeros(2)])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.zeros(2)], [np.zeros(3)])
