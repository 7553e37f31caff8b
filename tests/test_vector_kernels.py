"""The 16-lane vector kernels (rlkit/kernels/simd.py, row_gemm.py, lstm_recurrence.py).

The kernels are called directly, so they are checked on any CPU; the LSTM layer takes them
only where ``lstm_recurrence.applies`` (AVX-512 or AVX2 + FMA, float32, hidden a multiple of 16).
"""
import numba
import numpy as np
import pytest

from rlkit.functions.recurrent import LSTMSequence
from rlkit.kernels import lstm_recurrence, simd
from rlkit.kernels.row_gemm import matmul_rows, pack_panels
from test_layers import direct_cross_correlation

R = np.random.default_rng(7)


@numba.njit
def _tanh_lanes(x, out):
    for i in range(x.shape[0]):
        for j in range(0, x.shape[1], simd.LANES):
            simd.store(out, i, j, simd.tanh(simd.load(x, i, j)))


def _vector_tanh(values):
    x = np.asarray(values, np.float32).reshape(-1, simd.LANES)
    out = np.empty_like(x)
    _tanh_lanes(x, out)
    return out.ravel()


def test_vector_tanh_is_within_4e_7_of_tanh_and_never_past_one():
    x = np.concatenate([np.linspace(-12, 12, 400_000), np.geomspace(1e-30, 1e-2, 1_000),
                        -np.geomspace(1e-30, 1e-2, 1_000)]).astype(np.float32)
    x = x[:x.size // simd.LANES * simd.LANES]
    t = _vector_tanh(x)
    exact = np.tanh(x.astype(np.float64))
    assert np.abs(t - exact).max() < 4e-7
    assert np.abs(t).max() <= 1.0
    np.testing.assert_array_equal(_vector_tanh(-x), -t)  # odd, as tanh
    small = np.abs(x) < 1e-2            # where 4e-7 absolute says little: a relative bound
    np.testing.assert_allclose(t[small], exact[small], rtol=1e-6, atol=0)


def test_vector_tanh_keeps_nan_and_saturates_at_infinity():
    x = np.array([np.nan, np.inf, -np.inf, 9.0, -9.0, 30.0, 0.0, -0.0] * 2, np.float32)
    t = _vector_tanh(x)
    assert np.isnan(t[0]) and np.isnan(t[8])
    np.testing.assert_array_equal(t[[1, 2, 5]], [1.0, -1.0, 1.0])
    assert t[3] == pytest.approx(np.tanh(9.0), abs=1e-7) and t[4] == -t[3]
    assert t[6] == 0.0


@pytest.mark.parametrize("rows,shared,columns", [(1, 3, 16), (5, 7, 48), (9, 64, 80),
                                                 (32, 128, 512), (6, 512, 128), (3, 300, 32)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_rows_is_the_product(rows, shared, columns, accumulate):
    """Edge tiles (rows not a multiple of 4, columns not of 64) and blocks of the shared
    dimension (128 at a time) included, on strided rows of ``a`` and ``out``, the weight packed
    from a transposed view; nothing outside ``out`` is written."""
    a = R.standard_normal((rows + 3, shared + 5)).astype(np.float32)[1:rows + 1, 2:shared + 2]
    b = R.standard_normal((columns, shared)).astype(np.float32).T
    out_parent = R.standard_normal((rows + 2, columns + 16)).astype(np.float32)
    out = out_parent[1:rows + 1, :columns]
    before = out_parent.copy()
    matmul_rows(a, pack_panels(b), out, accumulate)
    expected = a.astype(np.float64) @ b + (before[1:rows + 1, :columns] if accumulate else 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.sqrt(shared))
    outside = np.ones(out_parent.shape, bool)
    outside[1:rows + 1, :columns] = False
    np.testing.assert_array_equal(out_parent[outside], before[outside])


def _lstm_arrays(n, steps, n_in, hidden, dtype):
    inputs = [R.standard_normal((n, steps, n_in)), R.standard_normal((n, hidden)) * 0.5,
              R.standard_normal((n, hidden)), R.standard_normal((4 * hidden, n_in)) * 0.3,
              R.standard_normal((4 * hidden, hidden)) * 0.3, R.standard_normal(4 * hidden) * 0.1,
              R.standard_normal(4 * hidden) * 0.1]
    grads = [R.standard_normal((n, steps, hidden)), R.standard_normal((n, hidden)),
             R.standard_normal((n, hidden))]
    return [a.astype(dtype) for a in inputs], [g.astype(dtype) for g in grads]


def _run_lstm(inputs, grads):
    op = LSTMSequence()
    op.needs_input_grad = (True,) * 7
    outputs = op.forward(*[a.copy() for a in inputs])
    return op.whole_recurrence, outputs, op.backward(*[g.copy(order="K") for g in grads])


@pytest.mark.parametrize("n,hidden", [(32, 128), (5, 16), (1, 32), (13, 48)])
def test_whole_recurrence_matches_float64_as_closely_as_the_step_loop(monkeypatch, n, hidden):
    """The LSTM op's outputs and all seven gradients, float32 through the vector kernels and
    through the step loop, against float64: the vector path's error stays within twice the step
    loop's plus 1e-6 (both are float32 round-off; the tanh approximation adds its 4e-7)."""
    inputs, grads = _lstm_arrays(n, 9, 6, hidden, np.float64)
    _, reference, reference_grads = _run_lstm(inputs, grads)
    inputs32, grads32 = [a.astype(np.float32) for a in inputs], [g.astype(np.float32) for g in grads]
    monkeypatch.setattr(lstm_recurrence, "applies", lambda *arguments: True)
    used_vectors, vector_out, vector_grads = _run_lstm(inputs32, grads32)
    monkeypatch.setattr(lstm_recurrence, "applies", lambda *arguments: False)
    used_steps, step_out, step_grads = _run_lstm(inputs32, grads32)
    assert used_vectors and not used_steps
    for vector, step, exact in zip((*vector_out, *vector_grads), (*step_out, *step_grads),
                                   (*reference, *reference_grads)):
        assert vector.dtype == np.float32 and vector.shape == exact.shape
        step_error = np.abs(step - exact).max()
        assert np.abs(vector - exact).max() <= 2 * step_error + 1e-6 * max(1, np.abs(exact).max())


def test_whole_recurrence_is_taken_for_float32_multiples_of_16_where_the_vectors_are_fast():
    float32, float64 = np.dtype(np.float32), np.dtype(np.float64)
    assert lstm_recurrence.applies(64, float32, float32) == simd.FAST_ON_THIS_CPU
    assert not lstm_recurrence.applies(40, float32, float32)
    assert not lstm_recurrence.applies(64, float64, float64)
    assert not lstm_recurrence.applies(64, float32, float64)


def test_whole_recurrence_carries_nan_to_the_outputs(monkeypatch):
    monkeypatch.setattr(lstm_recurrence, "applies", lambda *arguments: True)
    inputs, grads = _lstm_arrays(4, 3, 2, 16, np.float32)
    inputs[0][1, 0, 0] = np.nan
    _, (output, h, c), _ = _run_lstm(inputs, grads)
    assert np.isnan(output[1]).all() and np.isnan(h[1]).all() and np.isnan(c[1]).all()
    assert np.isfinite(np.delete(output, 1, axis=0)).all()


def test_vector_loads_refuse_arrays_that_are_not_float32():
    """A float64 array read 16 float32 lanes at a time would be garbage: numba refuses to
    compile it instead."""
    with pytest.raises(numba.core.errors.TypingError):
        matmul_rows(np.ones((4, 16)), np.ones((1, 16, 64)), np.zeros((4, 16)), False)


def test_whole_recurrence_takes_gradients_of_any_memory_order(monkeypatch):
    """A loss such as (c.T @ M).sum() hands the layer a transposed (F-ordered) gradient of c:
    the vector path reads it as the step loop does."""
    inputs, grads = _lstm_arrays(20, 4, 3, 16, np.float32)
    grads = [grads[0], np.asfortranarray(grads[1]), np.asfortranarray(grads[2])]
    results = []
    for vector in (True, False):
        monkeypatch.setattr(lstm_recurrence, "applies", lambda *arguments, vector=vector: vector)
        used, outputs, gradients = _run_lstm(inputs, grads)
        assert used == vector
        results.append(gradients)
    for vector_grad, step_grad in zip(*results):
        np.testing.assert_allclose(vector_grad, step_grad, rtol=1e-4, atol=1e-5)


def test_a_weight_of_another_dtype_takes_the_step_loop(monkeypatch):
    monkeypatch.setattr(simd, "FAST_ON_THIS_CPU", True)  # the rule itself, on any CPU
    inputs, grads = _lstm_arrays(4, 3, 2, 16, np.float32)
    inputs[4] = inputs[4].astype(np.float64)                      # w_hh
    used, (output, _, _), _ = _run_lstm(inputs, grads)
    assert not used and np.isfinite(output).all()


@pytest.mark.parametrize("out_shape,out_order", [((4, 40), "C"), ((4, 8), "C"), ((4, 32), "F")])
def test_matmul_rows_refuses_an_output_its_tiles_cannot_cover(out_shape, out_order):
    """Columns not a multiple of 16 (or fewer than 16), or rows that are not contiguous, would
    be read or written past their ends: an error instead."""
    panels = pack_panels(np.ones((8, out_shape[1]), np.float32))
    out = np.zeros(out_shape, np.float32, order=out_order)
    with pytest.raises(ValueError, match="multiple of 16"):
        matmul_rows(np.ones((4, 8), np.float32), panels, out, False)


@pytest.mark.parametrize("b_shape", [(9, 64), (8, 48)])
def test_matmul_rows_refuses_panels_of_another_shape(b_shape):
    """Panels packed for another shared dimension, or too few columns for ``out``."""
    with pytest.raises(ValueError, match="panels"):
        matmul_rows(np.ones((4, 8), np.float32), pack_panels(np.ones(b_shape, np.float32)),
                    np.zeros((4, 80), np.float32), False)


def test_matmul_rows_over_an_empty_shared_dimension_writes_zeros():
    out = np.ones((3, 16), np.float32)
    matmul_rows(np.ones((3, 0), np.float32), pack_panels(np.ones((0, 16), np.float32)), out, False)
    assert not out.any()


def test_pack_panels_lays_out_64_columns_a_panel_zero_padded():
    b = np.arange(3 * 80, dtype=np.float64).reshape(3, 80)
    panels = pack_panels(b)
    assert panels.shape == (2, 3, 64) and panels.dtype == np.float32 and panels.flags.c_contiguous
    np.testing.assert_array_equal(panels[0], b[:, :64])
    np.testing.assert_array_equal(panels[1, :, :16], b[:, 64:])
    assert not panels[1, :, 16:].any()


DIRECT_CASES = [  # (N, C, H, W), filters, kernel, stride, input dtype, scale
    ((3, 4, 84, 84), 32, (8, 8), (4, 4), np.uint8, 1 / 255),   # the Nature CNN's first layer
    ((1, 4, 84, 84), 16, (8, 8), (4, 4), np.uint8, 1 / 255),   # the 2013 network's, acting
    ((2, 3, 13, 17), 16, (2, 3), (1, 2), np.float32, 1.0),      # other geometries and dtypes
    ((2, 1, 9, 10), 32, (3, 3), (2, 1), np.float32, 0.5),
    ((2, 2, 10, 18), 16, (4, 4), (2, 2), np.uint8, 0.25),
]


@pytest.mark.parametrize("x_shape,filters,kernel,stride,dtype,scale", DIRECT_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_direct_convolution_is_the_cross_correlation(x_shape, filters, kernel, stride, dtype,
                                                      scale, with_bias):
    from rlkit.functions.conv import _weight_columns
    from rlkit.kernels import direct_conv
    x = (R.random(x_shape) * 255).astype(dtype)
    # the layer's weight memory: (KH, KW, C, O), seen as (O, C, KH, KW)
    memory = R.standard_normal(kernel + (x_shape[1], filters)).astype(np.float32)
    weight = memory.transpose(3, 2, 0, 1)
    bias = R.standard_normal(filters).astype(np.float32) if with_bias else None
    out_size = ((x_shape[2] - kernel[0]) // stride[0] + 1, (x_shape[3] - kernel[1]) // stride[1] + 1)
    assert direct_conv.applies(x, weight, bias, (0, 0), out_size) == simd.FAST_ON_THIS_CPU
    out = direct_conv.forward(x, _weight_columns(weight), bias, kernel, stride, scale, out_size)
    expected = direct_cross_correlation(scale * x.astype(np.float64), weight.astype(np.float64),
                                        stride, (0, 0)).transpose(0, 2, 3, 1)  # (N, OH, OW, O)
    if bias is not None:
        expected += bias.astype(np.float64)
    assert out.dtype == np.float32 and out.shape == expected.shape
    # float32 sums of up to 256 products: within a few float32 roundings of each
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("change", ["filters", "width", "rows", "padding", "dtype", "order"])
def test_direct_convolution_refuses_what_its_tiles_cannot_cover(change):
    from rlkit.kernels import direct_conv
    x = np.zeros((1, 4, 84, 84), np.uint8)
    weight = np.zeros((16, 4, 8, 8), np.float32)
    padding, out_size = (0, 0), (20, 20)
    if change == "filters":
        weight = np.zeros((64, 4, 8, 8), np.float32)   # four vectors: no tile for it
    elif change == "width":
        out_size = (20, 9)                              # not a multiple of the 4-pixel tile
    elif change == "rows":
        out_size = (9, 20)                              # 16 filters: the tile spans two rows
    elif change == "padding":
        padding = (1, 1)
    elif change == "dtype":
        x = x.astype(np.float64)
    else:
        x = np.asfortranarray(x)
    assert direct_conv.applies(np.zeros((1, 4, 84, 84), np.uint8), np.zeros((16, 4, 8, 8),
                               np.float32), None, (0, 0), (20, 20)) == simd.FAST_ON_THIS_CPU
    assert not direct_conv.applies(x, weight, None, padding, out_size)


WEIGHT_GRADIENT_CASES = [  # (N, C, H, W), filters, kernel, stride, input dtype, scale
    ((3, 4, 84, 84), 32, (8, 8), (4, 4), np.uint8, 1 / 255),   # the Nature CNN's first layer
    ((3, 4, 84, 84), 16, (8, 8), (4, 4), np.uint8, 1 / 255),   # the 2013 network's
    ((2, 3, 13, 20), 16, (2, 8), (1, 2), np.float32, 1.0),      # other geometries and dtypes
    ((2, 2, 10, 24), 32, (3, 8), (2, 2), np.float32, 0.5),
]


@pytest.mark.parametrize("x_shape,filters,kernel,stride,dtype,scale", WEIGHT_GRADIENT_CASES)
@pytest.mark.parametrize("given_out", [False, True])
def test_direct_weight_gradient_is_the_input_columns_times_the_output_gradient(
        x_shape, filters, kernel, stride, dtype, scale, given_out):
    """d loss / d weight columns = im2col(scale * x)^T @ g, against float64; an ``out`` array
    that holds other values is overwritten."""
    from rlkit.kernels import direct_conv
    from rlkit.kernels.im2col import im2col
    x = (R.random(x_shape) * 255).astype(dtype)
    out_size = ((x_shape[2] - kernel[0]) // stride[0] + 1, (x_shape[3] - kernel[1]) // stride[1] + 1)
    g_rows = R.standard_normal((x_shape[0] * out_size[0] * out_size[1], filters)).astype(np.float32)
    out = R.standard_normal((kernel[0] * kernel[1] * x_shape[1], filters)).astype(np.float32) \
        if given_out else None
    gradient = direct_conv.weight_gradient(x, g_rows, kernel, stride, scale, out=out)
    columns = im2col(np.ascontiguousarray((scale * x.astype(np.float64)).transpose(0, 2, 3, 1)),
                     kernel, stride, (0, 0))
    expected = columns.T @ g_rows.astype(np.float64)
    assert gradient.dtype == np.float32 and gradient.shape == expected.shape
    if given_out:
        assert gradient is out
    # float32 sums of up to 1200 products: within a few float32 roundings of the largest
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=2e-6 * np.abs(expected).max())


@pytest.mark.parametrize("bad", ["rows", "shape", "dtype", "order"])
def test_direct_weight_gradient_refuses_arrays_of_another_geometry(bad):
    """Its vector stores are not bounds-checked: a wrong ``out`` or ``g_rows`` is an error."""
    from rlkit.kernels import direct_conv
    x, g_rows = np.zeros((2, 4, 84, 84), np.uint8), np.zeros((800, 32), np.float32)
    out = np.zeros((256, 32), np.float32)
    if bad == "rows":
        g_rows = g_rows[:400]
    elif bad == "shape":
        out = np.zeros((256, 16), np.float32)
    elif bad == "dtype":
        out = out.astype(np.float64)
    else:
        out = np.asfortranarray(out)
    with pytest.raises(ValueError, match="weight_gradient"):
        direct_conv.weight_gradient(x, g_rows, (8, 8), (4, 4), 1 / 255, out=out)


@pytest.mark.parametrize("filters,kernel", [(32, (8, 4)), (16, (3, 8))])
def test_direct_weight_gradient_refuses_what_its_tiles_cannot_cover(filters, kernel):
    """A kernel not a multiple of 8 columns wide, or (16 filters) an odd number of rows high."""
    from rlkit.kernels import direct_conv
    x = np.zeros((1, 4, 84, 84), np.uint8)
    out_size = ((84 - kernel[0]) // 4 + 1, (84 - kernel[1]) // 4 + 1)
    assert direct_conv.applies(x, np.zeros((filters, 4) + kernel, np.float32), None, (0, 0),
                               (20, 20)) == simd.FAST_ON_THIS_CPU
    assert not direct_conv.weight_gradient_applies(x, np.zeros((filters, 4) + kernel, np.float32),
                                                   None, (0, 0), out_size)
    assert direct_conv.weight_gradient_applies(x, np.zeros((32, 4, 8, 8), np.float32), None,
                                               (0, 0), (20, 20)) == simd.FAST_ON_THIS_CPU


@pytest.mark.skipif(not simd.FAST_ON_THIS_CPU, reason="the layer takes the direct kernels only "
                    "where the vectors are fast")
@pytest.mark.parametrize("filters", [16, 32])
@pytest.mark.parametrize("with_optimiser", [False, True])
def test_a_first_layer_on_frames_takes_the_direct_kernels_with_or_without_a_graph(
        monkeypatch, filters, with_optimiser):
    """Acting and learning both run the direct forward; the learning forward's weight and bias
    gradients (computed in the optimiser's buffer when there is one) are the block path's."""
    import rlkit
    from rlkit import Tensor, nn, optim
    from rlkit.kernels import direct_conv
    calls = []
    original = direct_conv.forward
    monkeypatch.setattr(direct_conv, "forward", lambda *a: calls.append(1) or original(*a))
    frames = Tensor((R.random((5, 4, 84, 84)) * 255).astype(np.uint8))
    g = R.standard_normal((5, filters, 20, 20)).astype(np.float32)
    gradients = []
    for direct in (True, False):
        rlkit.manual_seed(0)
        layer = nn.Conv2d(4, filters, 8, stride=4, input_scale=1 / 255)
        if with_optimiser:
            optim.SGD(layer.parameters(), lr=0.1).zero_grad()
        if not direct:
            monkeypatch.setattr(direct_conv, "weight_gradient_applies", lambda *a: False)
        with rlkit.no_grad():
            acting = layer(frames).numpy()
        learning = layer(frames)
        learning.backward(Tensor(g))
        np.testing.assert_allclose(acting, learning.numpy(), rtol=1e-5, atol=1e-6)
        gradients.append((layer.weight.grad.copy(), layer.bias.grad.copy()))
    assert calls == [1, 1, 1]                   # no_grad, recording; then no_grad on the blocks' run
    for direct_grad, blocks_grad in zip(*gradients):
        np.testing.assert_allclose(direct_grad, blocks_grad, rtol=1e-5, atol=1e-5 * np.abs(blocks_grad).max())
