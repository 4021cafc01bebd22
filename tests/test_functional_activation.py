"""Tests of cconv.functional's activations and cross-entropy (with their backward functions)
against PyTorch, a hand-written training loop built from them, the refusal of a PyTorch-style
positional Conv2D(in, out, k) (and of extra positional arguments to the other conv layers), and
NumPy integers as thread counts."""
import numpy as np
import pytest

import cconv
from cconv import functional as F
from cconv.layers import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D

torch = pytest.importorskip("torch")


def torch_grads(fn, x, grad_out=None):
    """(fn(x), d(sum(fn(x) * grad_out))/dx) computed by torch in float64."""
    t = torch.tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(torch.ones_like(y) if grad_out is None else torch.tensor(grad_out))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dim", [1, -1, 0])
def test_softmax_and_log_softmax_match_torch(rng, dim):
    x = rng.standard_normal((4, 5, 3)) * 10
    g = rng.standard_normal(x.shape)
    for ours, backward, theirs in [(F.softmax, F.softmax_backward, torch.softmax),
                                   (F.log_softmax, F.log_softmax_backward, torch.log_softmax)]:
        expected, expected_grad = torch_grads(lambda t: theirs(t, dim), x, g)
        y = ours(x, dim)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(backward(g, y, dim), expected_grad, rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="dim must be in -3..2"):
        F.softmax(x, 3)


def test_relu_matches_torch_and_keeps_nan(rng):
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal(x.shape)
    expected, expected_grad = torch_grads(torch.relu, x, g)
    np.testing.assert_array_equal(F.relu(x), expected)
    np.testing.assert_array_equal(F.relu_backward(g, x), expected_grad)
    assert np.isnan(F.relu(np.array([np.nan]))[0])


@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_and_its_backward_match_torch(rng, soft):
    logits = rng.standard_normal((6, 4)) * 5
    target = rng.dirichlet(np.ones(4), size=6) if soft else np.array([0, 3, 1, 1, 2, 0])
    loss, grad = torch_grads(lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(target)), logits)
    assert F.cross_entropy(logits, target) == pytest.approx(float(loss), rel=1e-12)
    np.testing.assert_allclose(F.cross_entropy_backward(logits, target), grad, rtol=1e-10, atol=1e-15)
    with pytest.raises(ValueError, match="labels must be in 0..3"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3, 4, 0]))


def test_a_hand_written_training_loop_learns(rng):
    x = rng.standard_normal((256, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)  # XOR of the signs: needs the hidden layer
    w1, b1 = rng.standard_normal((2, 16)), np.zeros(16)
    w2, b2 = rng.standard_normal((16, 2)) * 0.1, np.zeros(2)
    for _ in range(300):
        hidden = F.relu(F.dense(x, w1, b1))
        logits = F.dense(hidden, w2, b2)
        grad_logits = F.cross_entropy_backward(logits, y)
        grad_hidden, grad_w2, grad_b2 = F.dense_backward(grad_logits, hidden, w2)
        _, grad_w1, grad_b1 = F.dense_backward(F.relu_backward(grad_hidden, F.dense(x, w1, b1)), x, w1)
        for param, grad in ((w1, grad_w1), (b1, grad_b1), (w2, grad_w2), (b2, grad_b2)):
            param -= 0.5 * grad
    accuracy = np.mean(F.softmax(F.dense(F.relu(F.dense(x, w1, b1)), w2, b2)).argmax(axis=1) == y)
    assert accuracy > 0.9


def test_a_pytorch_style_positional_conv2d_is_refused():
    with pytest.raises(TypeError, match=r"Conv2D\(1, 8, 3\).*PyTorch's Conv2d\(in_channels.*"
                                        r"write Conv2D\(8, 3\)"):
        Conv2D(1, 8, 3)
    layer = Conv2D(8, 3, stride=2)  # the Keras way, positional filters and kernel_size
    assert (layer.filters, layer.kernel_size, layer.stride) == (8, (3, 3), (2, 2))


@pytest.mark.parametrize("make, got", [(lambda: DepthwiseConv2D(3, 2), 2),
                                       (lambda: SeparableConv2D(8, 3, 2), 3),
                                       (lambda: Conv2DTranspose(8, 3, 2), 3)])
def test_the_other_conv_layers_take_their_options_by_keyword(make, got):
    with pytest.raises(TypeError, match=f"positionally and the rest .* by keyword; got {got} positional"):
        make()


def test_numpy_integers_are_thread_counts():
    cconv.set_num_threads(np.int64(1))
    assert cconv.get_num_threads() == 1 and type(cconv.get_num_threads()) is int
    with pytest.raises(TypeError, match="float"):
        cconv.set_num_threads(np.float64(2))
