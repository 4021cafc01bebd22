"""Tests of the Keras-style use of a model: compile / fit / evaluate / predict over a Trainer,
validation_split, a subscriptable History, softmax outputs with the cross-entropy, model(x) in
inference mode, EarlyStopping's patience and a second fit's learning-rate schedule."""
import numpy as np
import pytest

from reference import numerical_gradient, rel_error

import cconv
from cconv import callbacks, losses, optim
from cconv.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Softmax


@pytest.fixture(scope="module")
def digits():
    return cconv.datasets.load_digits()


def small_cnn(seed=0, activation=None):
    return cconv.Sequential([
        Conv2D(8, 3, padding="same", activation="relu"), MaxPool2D(2), Flatten(), Dropout(0.2),
        Dense(10, activation=activation)], input_shape=(1, 8, 8), seed=seed)


def test_compile_fit_evaluate_match_the_trainer_with_the_same_seed(digits):
    (x, y), (xt, yt) = digits
    keras_style = small_cnn()
    keras_style.compile(optimizer=optim.Adam(lr=3e-3), loss="sparse_categorical_crossentropy",
                        metrics=["accuracy"])
    history = keras_style.fit(x, y, epochs=2, batch_size=32, validation_data=(xt, yt), seed=0,
                              verbose=0)
    loss, accuracy = keras_style.evaluate(xt, yt)

    trainer = cconv.Trainer(small_cnn(), optimizer=optim.Adam(lr=3e-3))
    reference = trainer.fit(x, y, epochs=2, batch_size=32, validation_data=(xt, yt), seed=0, verbose=0)
    expected = trainer.evaluate(xt, yt)
    assert accuracy == expected["accuracy"] > 0.8
    assert loss == expected["loss"]
    assert history["val_accuracy"] == reference["val_accuracy"]
    assert keras_style.evaluate(xt, yt, return_dict=True) == expected
    np.testing.assert_array_equal(keras_style.predict(xt), trainer.model.predict(xt))


def test_evaluate_without_metrics_gives_the_loss_and_fit_needs_compile(digits):
    (x, y), _ = digits
    model = small_cnn()
    with pytest.raises(RuntimeError, match=r"model.compile\("):
        model.fit(x, y)
    model.compile(loss="cross_entropy")
    assert isinstance(model.evaluate(x[:50], y[:50]), float)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        model.compile(metrics=["f1"])


def test_validation_split_holds_out_the_last_samples(digits):
    (x, y), _ = digits
    x, y = x[:200], y[:200]
    split = cconv.Trainer(small_cnn(), optimizer=optim.Adam(3e-3)).fit(
        x, y, epochs=2, validation_split=0.25, seed=1, verbose=0)
    explicit = cconv.Trainer(small_cnn(), optimizer=optim.Adam(3e-3)).fit(
        x[:150], y[:150], epochs=2, validation_data=(x[150:], y[150:]), seed=1, verbose=0)
    assert split.history == explicit.history
    model = small_cnn().compile()
    assert "val_loss" in model.fit(x, y, validation_split=0.1, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, y, validation_split=0.1, validation_data=(x, y), verbose=0)
    with pytest.raises(ValueError, match="validation_split must be a number from 0"):
        model.fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="empty validation set"):
        model.fit(x, y, validation_split=1e-17, verbose=0)


def test_history_is_subscriptable(digits):
    (x, y), _ = digits
    history = small_cnn().compile().fit(x[:64], y[:64], epochs=2, verbose=0)
    assert history["loss"] is history.history["loss"] and len(history["accuracy"]) == 2
    assert "loss" in history and list(history.keys()) == ["loss", "accuracy"]
    with pytest.raises(KeyError, match="no metric 'val_loss'.*loss, accuracy"):
        history["val_loss"]


def test_a_softmax_output_trains_with_the_cross_entropy_on_probabilities(digits):
    (x, y), (xt, yt) = digits
    model = small_cnn(activation="softmax")
    with pytest.raises(ValueError, match="ends in a softmax but the cross-entropy loss takes logits"):
        cconv.Trainer(model).fit(x[:10], y[:10], verbose=0)
    model.compile(optimizer=optim.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    assert model.trainer.loss.from_logits is False
    model.fit(x, y, epochs=2, seed=0, verbose=0)
    assert model.evaluate(xt, yt)[1] > 0.8
    np.testing.assert_allclose(model.predict(xt[:5]).sum(axis=1), 1, rtol=1e-5)


def test_cross_entropy_on_probabilities_gives_the_gradient_of_the_logits_loss(rng):
    logits = rng.standard_normal((4, 5))
    labels = np.array([0, 4, 2, 2])
    softmax = Softmax()
    probs = softmax.forward(logits)
    loss, grad_probs = losses.CrossEntropy(from_logits=False)(probs, labels)
    expected_loss, expected_grad = losses.CrossEntropy()(logits, labels)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(softmax.backward(grad_probs), expected_grad, rtol=1e-9, atol=1e-15)


def test_softmax_layer_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((3, 6))
    weights = rng.standard_normal((3, 6))
    layer = Softmax()
    layer.forward(x)
    analytic = layer.backward(weights)
    numeric = numerical_gradient(lambda: np.array((layer.forward(x) * weights).sum()), x, 1.0, 1e-6)
    assert rel_error(analytic, numeric) < 1e-7


def test_calling_a_model_runs_inference_unless_training_is_asked(rng):
    model = cconv.Sequential([Dropout(0.5)], input_shape=(100,), dtype="float64")
    x = rng.standard_normal((2, 100))
    np.testing.assert_array_equal(model(x), x)
    assert model.training  # the call left the model's mode as it was
    assert np.count_nonzero(model(x, training=True) == 0) > 20


def test_early_stopping_stops_after_patience_epochs_without_improvement(digits):
    (x, y), (xt, yt) = digits
    for patience in (1, 2):
        stopper = callbacks.EarlyStopping(monitor="val_loss", patience=patience, min_delta=100.0)
        history = small_cnn().compile().fit(x[:64], y[:64], epochs=10, validation_data=(xt, yt),
                                            callbacks=[stopper], verbose=0)
        assert len(history.epoch) == 1 + patience and stopper.stopped_epoch == patience
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=2, min_delta=100.0, verbose=1)
    logged = []
    model = small_cnn().compile()
    model.trainer.log = logged.append
    history = model.fit(x[:64], y[:64], epochs=3, validation_data=(xt, yt), callbacks=[stopper], verbose=0)
    assert len(history.epoch) == 3 and stopper.stopped_epoch is None and logged == []


def test_a_second_fit_restarts_the_learning_rate_schedule(digits):
    (x, y), _ = digits
    seen = []

    class Record(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.trainer.optimizer.lr)

    model = small_cnn().compile(optimizer=optim.SGD(0.4))
    schedule = [callbacks.LearningRateScheduler(optim.StepLR(1, gamma=0.5)), Record()]
    model.fit(x[:40], y[:40], epochs=2, callbacks=schedule, verbose=0)
    model.fit(x[:40], y[:40], epochs=2, callbacks=schedule, verbose=0)
    assert seen == [0.4, 0.2, 0.4, 0.2]
