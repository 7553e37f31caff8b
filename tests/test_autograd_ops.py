"""Gradient checks (float64, centred differences) for every Tensor op, several shapes each."""
import numpy as np
import pytest

import rlkit
from rlkit import Tensor, gradcheck

R = np.random.default_rng(0)


def randn(*shape):
    return R.standard_normal(shape)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 4), (5, 1)), ((), (2, 3))]


@pytest.mark.parametrize("shape_a,shape_b", BINARY_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcasting_arithmetic(op, shape_a, shape_b):
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
           "mul": lambda a, b: a * b, "div": lambda a, b: a / b}
    b = positive(*shape_b) if op == "div" else randn(*shape_b)
    assert gradcheck(fns[op], randn(*shape_a), b)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("name,fn,make", [
    ("neg", lambda a: -a, randn),
    ("pow3", lambda a: a ** 3, randn),
    ("pow_half", lambda a: a ** 0.5, positive),
    ("exp", lambda a: a.exp(), randn),
    ("log", lambda a: a.log(), positive),
    ("sqrt", lambda a: a.sqrt(), positive),
    ("tanh", lambda a: a.tanh(), randn),
    ("sigmoid", lambda a: a.sigmoid(), randn),
    ("relu", lambda a: a.relu(), randn),
    ("abs", lambda a: a.abs(), randn),
    ("clip", lambda a: a.clip(-0.5, 0.7), randn),
    ("softmax0", lambda a: a.softmax(axis=0), randn),
    ("softmax_last", lambda a: a.softmax(axis=-1), randn),
    ("log_softmax", lambda a: a.log_softmax(axis=-1), randn),
    ("scalar_ops", lambda a: (2.0 - a) * 3.0 / (a * a + 1.0) + 1.5, randn),
])
def test_unary(name, fn, make, shape):
    assert gradcheck(fn, make(*shape))


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)),
                                             ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2)),
                                             ((5, 3, 4), (1, 4, 2))])
def test_matmul(shape_a, shape_b):
    assert gradcheck(lambda a, b: a @ b, randn(*shape_a), randn(*shape_b))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_reductions(reduction, axis, keepdims):
    fn = lambda a: getattr(a, reduction)(axis=axis, keepdims=keepdims)  # noqa: E731
    assert gradcheck(fn, randn(2, 3, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, True), ((0, 2), False), (-1, False)])
def test_mean_and_mean_losses_equal_numpys_mean_bit_for_bit(dtype, axis, keepdims):
    """The engine's mean is a sum and one division (NumPy's mean is the same arithmetic, in
    Python): values, dtype and shape equal ``ndarray.mean``'s exactly."""
    a = R.standard_normal((5, 7, 3)).astype(dtype)
    expected = a.mean(axis=axis, keepdims=keepdims)
    got = Tensor(a).mean(axis=axis, keepdims=keepdims).data
    assert np.asarray(got).dtype == dtype and np.shape(got) == np.shape(expected)
    np.testing.assert_array_equal(got, expected)
    p, t = R.standard_normal((32, 2)).astype(dtype), R.standard_normal((32, 2)).astype(dtype)
    np.testing.assert_array_equal(rlkit.nn.mse_loss(Tensor(p), Tensor(t)).data, ((p - t) ** 2).mean())


def test_max_sends_gradient_to_first_of_tied_maxima():
    a = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), requires_grad=True)
    a.max(axis=1).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize("fn", [
    lambda a: a.reshape(4, 6),
    lambda a: a.reshape(-1),
    lambda a: a.transpose(),
    lambda a: a.transpose(1, 0, 2),
    lambda a: a.flatten(1),
    lambda a: a.T,
])
def test_shape_ops(fn):
    assert gradcheck(fn, randn(2, 3, 4))


@pytest.mark.parametrize("index", [
    1, slice(0, 2), (slice(None), 1), (Ellipsis, -1), np.array([0, 2, 2]),
    (np.arange(3), np.array([1, 0, 1])), np.array([True, False, True]),
])
def test_getitem(index):
    assert gradcheck(lambda a: a[index], randn(3, 4))


def test_integer_array_indexing_repeats_accumulate():
    q = Tensor(np.zeros((2, 3)), requires_grad=True)
    q[np.array([0, 0, 1]), np.array([2, 2, 0])].sum().backward()
    np.testing.assert_array_equal(q.grad, [[0, 0, 2], [1, 0, 0]])


def test_gather_picks_q_of_taken_actions_and_routes_gradient_only_there():
    q = Tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), requires_grad=True)
    actions = np.array([[2], [0]])
    chosen = q.gather(1, actions)
    np.testing.assert_array_equal(chosen.numpy(), [[3.0], [4.0]])
    chosen.sum().backward()
    np.testing.assert_array_equal(q.grad, [[0, 0, 1], [1, 0, 0]])
    assert gradcheck(lambda t: t.gather(1, np.array([[1, 1], [0, 2], [2, 2]])), randn(3, 3))
    assert gradcheck(lambda t: t.gather(0, np.array([[1, 0, 1]])), randn(2, 3))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_and_stack(axis):
    assert gradcheck(lambda a, b: rlkit.cat([a, b], axis=axis), randn(2, 3), randn(2, 3))
    assert gradcheck(lambda a, b, c: rlkit.stack([a, b, c], axis=axis), randn(2, 3), randn(2, 3), randn(2, 3))


def test_cat_unequal_sizes():
    assert gradcheck(lambda a, b: rlkit.cat([a, b], axis=1), randn(2, 1), randn(2, 4))


def test_maximum_and_where_with_broadcasting():
    a, b = randn(3, 4), randn(4)
    assert gradcheck(rlkit.maximum, a, b)
    condition = randn(3, 4) > 0
    assert gradcheck(lambda x, y: rlkit.where(condition, x, y), a, b)


def test_cast_keeps_gradient_dtype():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    (x.astype(np.float64) * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_dot_product_of_two_vectors():
    assert gradcheck(lambda a, b: a @ b, randn(4), randn(4))


def test_power_zero_has_zero_gradient_everywhere_zero_included():
    x = Tensor(np.array([0.0, 2.0, -1.5]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_relative_precision_for_large_negative_inputs(dtype):
    # down to -80: sigmoid(-80) = 1.8e-35 is still a normal float32, and so is 1 / it
    a = np.array([-80.0, -30.0, -20.0, -17.0, -1.0, 0.0, 1.0, 20.0, 80.0], dtype)
    exact = 1 / (1 + np.exp(-a.astype(np.longdouble)))
    x = Tensor(a, requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_allclose(y.numpy(), exact.astype(dtype), rtol=4 * np.finfo(dtype).eps, atol=0)
    y.log().sum().backward()  # d log sigmoid(a) / da = 1 - sigmoid(a): finite, about 1 below 0
    assert np.isfinite(x.grad).all() and x.grad[0] == pytest.approx(1.0)
