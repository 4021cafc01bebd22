"""Tests of cconv.Trainer, losses and callbacks: learning on real data, bit-for-bit
reproducibility, the progress output, the NaN guard, Ctrl-C, argument checks before any
work, early stopping / checkpoints / schedules, and the losses against PyTorch."""
import io
import os
import signal

import numpy as np
import pytest

import cconv
from cconv import callbacks, losses, optim
from cconv.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, BatchNorm2D
from cconv.trainer import TrainingDivergedError


@pytest.fixture(scope="module")
def digits():
    return cconv.datasets.load_digits()


def small_cnn(seed=0, dropout=0.0, dtype="float32"):
    return cconv.Sequential([
        Conv2D(8, 3, padding="same", activation="relu"), BatchNorm2D(), MaxPool2D(2),
        Flatten(), Dropout(dropout), Dense(10)], input_shape=(1, 8, 8), seed=seed, dtype=dtype)


def weights(model):
    return [p.copy() for p in model.parameters()]


def test_training_learns_digits(digits):
    (x, y), (xt, yt) = digits
    trainer = cconv.Trainer(small_cnn(), optimizer=optim.Adam(lr=3e-3))
    history = trainer.fit(x, y, epochs=3, batch_size=32, validation_data=(xt, yt), seed=0, verbose=0)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.epoch == [0, 1, 2]
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = trainer.evaluate(xt, yt)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] > 0.9
    assert result["loss"] == pytest.approx(history.history["val_loss"][-1])


def test_same_seed_and_threads_reproduce_bit_for_bit(digits):
    (x, y), _ = digits
    runs = []
    for _ in range(2):
        cconv.set_num_threads(2)
        model = small_cnn(seed=1, dropout=0.3)
        history = cconv.Trainer(model, optimizer="adam").fit(
            x[:300], y[:300], epochs=2, batch_size=25, seed=7, verbose=0)
        runs.append((weights(model), model.state_dict(), history.history))
    (w1, s1, h1), (w2, s2, h2) = runs
    assert h1 == h2
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    model = small_cnn(seed=1, dropout=0.3)
    cconv.Trainer(model).fit(x[:300], y[:300], epochs=2, batch_size=25, seed=8, verbose=0)
    assert not np.array_equal(weights(model)[0], w1[0])


def test_progress_output(digits):
    (x, y), (xt, yt) = digits
    trainer = cconv.Trainer(small_cnn())
    out = io.StringIO()
    trainer.fit(x[:100], y[:100], epochs=2, batch_size=30, validation_data=(xt[:50], yt[:50]),
                verbose=1, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # not a terminal: one finished line per epoch
    assert lines[0].startswith("Epoch 1/2 [") and lines[1].startswith("Epoch 2/2 [")
    for fragment in ["4/4", "loss ", "accuracy ", "val_loss ", "val_accuracy ", "samples/s"]:
        assert fragment in lines[1], fragment


def test_verbose_zero_prints_nothing(digits, capsys):
    (x, y), _ = digits
    cconv.Trainer(small_cnn()).fit(x[:64], y[:64], epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_live_progress_bar_on_a_terminal(digits):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    (x, y), _ = digits
    out = Terminal()
    cconv.Trainer(small_cnn()).fit(x[:64], y[:64], epochs=1, batch_size=16, verbose=1, file=out)
    text = out.getvalue()
    assert text.startswith("\rEpoch 1/1") and text.endswith("s\n") and "4/4" in text


class PoisonAt(callbacks.Callback):
    """Sets a weight to NaN after a given batch; remembers the weights after every batch."""

    def __init__(self, batch):
        self.batch = batch
        self.saved = []

    def on_batch_end(self, batch, logs=None):
        self.saved.append([p.copy() for p in self.model.parameters()])
        if batch == self.batch:
            self.model.parameters()[0][0, 0, 0, 0] = np.nan


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_good_weights(digits):
    (x, y), _ = digits
    model = small_cnn()
    poison = PoisonAt(batch=2)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, batch 4 of") as info:
        cconv.Trainer(model, optimizer=optim.SGD(0.01)).fit(
            x[:200], y[:200], epochs=2, batch_size=20, callbacks=[poison], verbose=0, shuffle=False)
    assert isinstance(info.value, FloatingPointError)
    params = model.parameters()
    assert all(np.all(np.isfinite(p)) for p in params)
    # batch 4's loss is NaN; batch 3's was finite, so the weights batch 3 ran with come back
    assert all(np.array_equal(a, b) for a, b in zip(params, poison.saved[1]))
    assert np.all(np.isfinite(model.predict(x[:10])))


def test_divergence_from_a_huge_learning_rate(digits):
    (x, y), _ = digits
    model = cconv.Sequential([Flatten(), Dense(10)], input_shape=(1, 8, 8), seed=0)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+, batch \d+"):
        cconv.Trainer(model, loss="mse", optimizer=optim.SGD(1e6)).fit(
            x[:100], np.eye(10)[y[:100]], epochs=5, batch_size=10, verbose=0)
    assert all(np.all(np.isfinite(p)) for p in model.parameters())


class InterruptAt(callbacks.Callback):
    def __init__(self, batch):
        self.batch = batch

    def on_batch_end(self, batch, logs=None):
        if batch == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_after_the_current_batch(digits):
    (x, y), _ = digits
    before = signal.getsignal(signal.SIGINT)
    model = small_cnn()
    out = io.StringIO()
    counter = []

    class Count(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            counter.append(batch)

    history = cconv.Trainer(model).fit(x[:200], y[:200], epochs=3, batch_size=20,
                                       callbacks=[InterruptAt(3), Count()], file=out)
    assert history.interrupted and counter == [0, 1, 2, 3]
    assert history.epoch == []
    assert "Interrupted" in out.getvalue()
    assert signal.getsignal(signal.SIGINT) is before
    assert model.predict(x[:5]).shape == (5, 10)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(epochs=1.5), TypeError, "epochs"),
    (dict(verbose=3), ValueError, "verbose"),
    (dict(validation_data=(1,)), TypeError, "validation_data"),
    (dict(callbacks=[print]), TypeError, "callbacks"),
    (dict(callbacks=[callbacks.EarlyStopping()]), ValueError, "validation_data"),
    (dict(y=np.arange(31) % 10), ValueError, "31 labels"),
    (dict(y=np.full(30, 10)), ValueError, r"0\.\.9"),
    (dict(y=np.full(30, -1)), ValueError, r"0\.\.9"),
    (dict(y=np.full(30, 0.5)), ValueError, "integers"),
    (dict(y=np.array(["a"] * 30)), TypeError, "integers"),
    (dict(X=np.zeros((30, 1, 9, 8))), ValueError, r"\(N, 1, 8, 8\)"),
    (dict(X=np.full((30, 1, 8, 8), np.nan)), ValueError, "NaN"),
    (dict(X=np.zeros((0, 1, 8, 8)), y=np.zeros(0, int)), ValueError, "no samples"),
])
def test_bad_fit_arguments_fail_before_any_work(kwargs, error, match, digits):
    (x, y), _ = digits
    model = small_cnn()
    before = weights(model)
    args = dict(X=x[:30], y=y[:30], verbose=0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        cconv.Trainer(model).fit(args.pop("X"), args.pop("y"), **args)
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model)))


def test_bad_trainer_arguments():
    model = small_cnn()
    with pytest.raises(ValueError, match="unknown loss"):
        cconv.Trainer(model, loss="hinge")
    with pytest.raises(ValueError, match="unknown optimizer"):
        cconv.Trainer(model, optimizer="lbfgs")
    with pytest.raises(TypeError):
        cconv.Trainer("model")
    with pytest.raises(ValueError, match="flat"):
        cconv.Trainer(cconv.Sequential([Conv2D(2, 3)], input_shape=(1, 5, 5))).fit(
            np.zeros((2, 1, 5, 5)), np.zeros(2, int))


def test_early_stopping_and_restore_best(digits):
    (x, y), (xt, yt) = digits
    model = small_cnn()
    stopper = callbacks.EarlyStopping(monitor="val_accuracy", patience=0, min_delta=2.0,
                                      restore_best_weights=True)
    history = cconv.Trainer(model).fit(x[:200], y[:200], epochs=10, validation_data=(xt, yt),
                                       callbacks=[stopper], verbose=0)
    assert history.epoch == [0, 1] and stopper.stopped_epoch == 1 and stopper.best_epoch == 0
    restored = cconv.Trainer(model).evaluate(xt, yt)["accuracy"]
    assert restored == pytest.approx(history.history["val_accuracy"][0])


def test_model_checkpoint_saves_best(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = small_cnn()
    path = str(tmp_path / "best.npz")
    checkpoint = callbacks.ModelCheckpoint(path, monitor="val_loss")
    history = cconv.Trainer(model, optimizer=optim.Adam(3e-3)).fit(
        x[:300], y[:300], epochs=3, validation_data=(xt, yt), callbacks=[checkpoint], verbose=0)
    best = min(history.history["val_loss"])
    assert checkpoint.best == best
    loaded = cconv.load_model(path)
    assert cconv.Trainer(loaded).evaluate(xt, yt)["loss"] == pytest.approx(best, rel=1e-6)
    every = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.npz"), save_best_only=False)
    cconv.Trainer(model).fit(x[:50], y[:50], epochs=2, callbacks=[every], verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "e1.npz", "e2.npz"]


def test_learning_rate_scheduler(digits):
    (x, y), _ = digits
    seen = []

    class Record(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.trainer.optimizer.lr)

    trainer = cconv.Trainer(small_cnn(), optimizer=optim.SGD(0.4))
    trainer.fit(x[:40], y[:40], epochs=4, callbacks=[
        callbacks.LearningRateScheduler(optim.StepLR(2, gamma=0.5)), Record()], verbose=0)
    assert seen == [0.4, 0.4, 0.2, 0.2]
    with pytest.raises(ValueError, match="learning rate"):
        trainer.fit(x[:40], y[:40], epochs=1, verbose=0,
                    callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: -1.0)])


def test_mse_regression_trains():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 1, 4, 4))
    target = x.reshape(200, -1) @ rng.standard_normal((16, 2))
    model = cconv.Sequential([Flatten(), Dense(2)], input_shape=(1, 4, 4), seed=0, dtype="float64")
    trainer = cconv.Trainer(model, loss="mse", optimizer=optim.Adam(0.05))
    history = trainer.fit(x, target, epochs=30, batch_size=20, verbose=0)
    assert list(history.history) == ["loss"]
    assert history.history["loss"][-1] < 1e-2 * history.history["loss"][0]
    with pytest.raises(ValueError, match="shape"):
        trainer.fit(x, target[:, :1], verbose=0)


# ---------------------------------------------------------------------------- losses

def test_cross_entropy_matches_torch(rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((6, 4)) * 3
    labels = np.array([0, 3, 1, 2, 3, 0])
    loss, grad = losses.CrossEntropy()(logits, labels)
    t = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-14)
    probs = rng.dirichlet(np.ones(4), size=6)
    loss, grad = losses.CrossEntropy()(logits, probs)
    t.grad = None
    ref = torch.nn.functional.cross_entropy(t, torch.tensor(probs))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-14)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e30, 1e30, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = losses.CrossEntropy()(logits, np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(1e30, rel=1e-6)
    assert np.all(np.isfinite(grad)) and grad.dtype == np.float32


def test_mse_matches_torch(rng):
    torch = pytest.importorskip("torch")
    out, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    loss, grad = losses.MeanSquaredError()(out, target)
    t = torch.tensor(out, requires_grad=True)
    ref = torch.nn.functional.mse_loss(t, torch.tensor(target))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-14)


# ---------------------------------------------------------------------------- output paths

def test_an_unwritable_checkpoint_path_fails_before_training(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = small_cnn()
    before = weights(model)
    for path in [str(tmp_path / "missing" / "best.npz"), str(tmp_path / "missing" / "e{epoch}.npz")]:
        checkpoint = callbacks.ModelCheckpoint(path, monitor="val_loss")
        with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
            cconv.Trainer(model).fit(x[:64], y[:64], epochs=2, validation_data=(xt, yt),
                                     callbacks=[checkpoint], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model)))  # nothing trained


def test_a_failed_save_names_the_users_path(tmp_path):
    target = tmp_path / "model.npz"
    target.mkdir()  # a folder where the file should go
    with pytest.raises(OSError, match=f"cannot write the model file '{target}'") as info:
        small_cnn().save(str(target))
    assert ".tmp" not in str(info.value)
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_redraws_in_place_only_on_a_terminal_outside_mpi(digits, monkeypatch):
    (x, y), _ = digits
    for name in cconv.trainer.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    outputs = {}
    for kind, file in [("pipe", io.StringIO()), ("terminal", FakeTerminal())]:
        cconv.Trainer(small_cnn()).fit(x[:512], y[:512], epochs=1, batch_size=8, file=file)
        outputs[kind] = file.getvalue()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")  # a rank started by mpirun, on its pty
    under_mpi = FakeTerminal()
    cconv.Trainer(small_cnn()).fit(x[:512], y[:512], epochs=1, batch_size=8, file=under_mpi)
    assert "\r" in outputs["terminal"]
    for text in (outputs["pipe"], under_mpi.getvalue()):
        assert "\r" not in text and text.count("\n") == 1 and text.startswith("Epoch 1/1")
