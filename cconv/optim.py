"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (StepLR, CosineLR).

Optimizers follow PyTorch's update rules and update the parameter arrays in place:
`opt.step(params, grads)` takes two equal-length lists of arrays in a fixed order (the
Trainer passes model.parameters() and model.gradients()); per-parameter state is kept by
position. A schedule is a callable `schedule(epoch, base_lr) -> lr` (epoch counts from 0);
the LearningRateScheduler callback applies it at the start of every epoch.
"""
import math

import numpy as np

from cconv._args import as_bool, as_count, as_finite_float

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR", "CosineLR", "get", "NAMES"]


class _Checked:
    """A hyper-parameter attribute checked on every assignment (`opt.lr = -1` raises like
    the constructor would): `check(value, name)` returns the value to store or raises."""

    def __init__(self, check):
        self.check = check

    def __set_name__(self, owner, name):
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, objtype=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value):
        setattr(obj, self.slot, self.check(value, self.name))


def _positive(value, name):
    return as_finite_float(value, name, 0, low_open=True)


def _non_negative(value, name):
    return as_finite_float(value, name, 0)


def _below_one(value, name):
    return as_finite_float(value, name, 0, 1, high_open=True)


def _betas(value, name):
    try:
        beta1, beta2 = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {value!r}") from None
    return (_below_one(beta1, f"{name}[0]"), _below_one(beta2, f"{name}[1]"))


class Optimizer:
    """Base class: learning rate `lr`, L2 `weight_decay`, state per parameter position.

    Hyper-parameters are checked whenever they are set, after construction too: assigning
    `opt.lr = -1` (or a NaN, or a string) raises ValueError / TypeError and keeps the old value."""

    lr = _Checked(_positive)
    weight_decay = _Checked(_non_negative)

    def __init__(self, lr, weight_decay=0.0):
        self.lr = lr
        self.weight_decay = weight_decay
        self.iterations = 0
        self.state = {}

    def step(self, params, grads):
        """Update every array in `params` in place from the matching array in `grads`."""
        if len(params) != len(grads):
            raise ValueError(f"step got {len(params)} parameters but {len(grads)} gradients")
        self.iterations += 1
        for index, (param, grad) in enumerate(zip(params, grads)):
            if param.shape != grad.shape:
                raise ValueError(f"parameter {index} has shape {param.shape} but its gradient has "
                                 f"shape {grad.shape}")
            self._update(index, param, grad)

    def reset(self):
        """Forget the per-parameter state (momentum, moment estimates) and the step count."""
        self.iterations = 0
        self.state = {}

    def _update(self, index, param, grad):
        raise NotImplementedError

    def get_config(self):
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """SGD(lr, momentum=0, nesterov=False, weight_decay=0), PyTorch's update:
    g += weight_decay * p; buf = momentum * buf + g; p -= lr * (g + momentum * buf if nesterov else buf)."""

    momentum = _Checked(_below_one)
    nesterov = _Checked(as_bool)

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = momentum
        self.nesterov = nesterov
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _update(self, index, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = self.state.get(index)
            if buf is None:
                buf = self.state[index] = grad.copy()
            else:
                buf *= self.momentum
                buf += grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= self.lr * grad

    def get_config(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0): weight_decay is L2 added to
    the gradient (as torch.optim.Adam); use AdamW for decoupled weight decay."""

    decoupled = False

    betas = _Checked(_betas)
    eps = _Checked(_non_negative)

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.betas = betas
        self.eps = eps

    def _update(self, index, param, grad):
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                param *= 1 - self.lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param
        moments = self.state.get(index)
        if moments is None:
            moments = self.state[index] = (param * 0, param * 0)
        m, v = moments
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        t = self.iterations
        denom = np.sqrt(v)
        denom *= 1 / math.sqrt(1 - beta2 ** t)
        denom += self.eps
        param -= (self.lr / (1 - beta1 ** t)) * (m / denom)

    def get_config(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01): Adam with decoupled
    weight decay, p *= 1 - lr * weight_decay before the Adam step (torch.optim.AdamW)."""

    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas, eps, weight_decay)


class StepLR:
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = as_count(step_size, "step_size", 1)
        self.gamma = as_finite_float(gamma, "gamma", 0, low_open=True)

    def __call__(self, epoch, base_lr):
        return base_lr * self.gamma ** (epoch // self.step_size)

    def __repr__(self):
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"


class CosineLR:
    """Cosine annealing from base_lr at epoch 0 to min_lr at epoch t_max (then held)."""

    def __init__(self, t_max, min_lr=0.0):
        self.t_max = as_count(t_max, "t_max", 1)
        self.min_lr = as_finite_float(min_lr, "min_lr", 0)

    def __call__(self, epoch, base_lr):
        progress = min(epoch, self.t_max) / self.t_max
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def __repr__(self):
        return f"CosineLR(t_max={self.t_max}, min_lr={self.min_lr})"


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
NAMES = tuple(_BY_NAME)


def get(optimizer, lr=None):
    """An optimizer from a name ('sgd', 'adam', 'adamw', with an optional lr) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        cls = _BY_NAME.get(optimizer.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {', '.join(NAMES)}")
        return cls() if lr is None else cls(lr=lr)
    raise TypeError(f"optimizer must be a name such as 'adam' or a cconv.optim.Optimizer, got "
                    f"{type(optimizer).__name__}")

