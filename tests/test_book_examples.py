"""The seed book's worked back-propagation examples, reproduced by the autograd engine."""
import math

import numpy as np
import pytest

from rlkit import Tensor


def leaf(value):
    return Tensor(np.array(value, dtype=np.float64), requires_grad=True)


def test_multiply_and_add_gates():
    x, y = leaf(2.0), leaf(3.0)
    z = x * y
    assert z.item() == 6
    z.backward(np.array(2.0))                       # the book's gateMul.backward(2) -> [6, 4]
    assert (x.grad, y.grad) == (6, 4)
    a, b = leaf(5.0), leaf(6.0)
    s = a + b
    assert s.item() == 11
    s.backward(np.array(3.0))                       # gateAdd.backward(3) -> [3, 3]
    assert (a.grad, b.grad) == (3, 3)


def test_f_equals_x_plus_y_times_z_at_minus2_5_minus4():
    x, y, z = leaf(-2.0), leaf(5.0), leaf(-4.0)
    f = (x + y) * z
    assert f.item() == -12
    f.backward()
    assert (x.grad, y.grad, z.grad) == (-4, -4, 3)


def test_two_input_sigmoid_neuron():
    w0, x0, w1, x1, w2 = leaf(2.0), leaf(-1.0), leaf(-3.0), leaf(-2.0), leaf(-3.0)
    f = 1 / (1 + (-(w0 * x0 + w1 * x1 + w2)).exp())
    assert f.item() == pytest.approx(1 / (1 + math.exp(-1)))      # 0.73
    f.backward()
    local = f.item() * (1 - f.item())                               # the book's 0.2 (0.1966...)
    assert w2.grad == pytest.approx(local)
    assert w0.grad == pytest.approx(-local) and x0.grad == pytest.approx(2 * local)
    assert w1.grad == pytest.approx(-2 * local) and x1.grad == pytest.approx(-3 * local)
    # the book rounds each intermediate to two decimals: dw2 = 0.2, dw0 = -0.2, dx0 = 0.4
    assert round(float(w2.grad), 1) == 0.2 and round(float(w0.grad), 1) == -0.2
    assert round(float(x0.grad), 1) == 0.4
    # and the same neuron through the fused sigmoid op gives identical gradients
    g0, h0 = leaf(2.0), leaf(-1.0)
    (g0 * h0 + leaf(-3.0) * leaf(-2.0) + leaf(-3.0)).sigmoid().backward()
    assert g0.grad == pytest.approx(w0.grad) and h0.grad == pytest.approx(x0.grad)
