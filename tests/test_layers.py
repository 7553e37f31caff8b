"""Layers: gradient checks in float64 (inputs and every parameter), shapes, modes and errors."""
import numpy as np
import pytest

import rlkit
from rlkit import Tensor, gradcheck, gradcheck_module, nn, optim
from rlkit import functions as F
from rlkit.kernels.im2col import col2im, col2im_arrays, im2col

R = np.random.default_rng(7)

CONV_CASES = [  # (N, C, H, W), out channels, kernel, stride, padding
    ((2, 3, 7, 7), 4, (3, 3), (1, 1), (0, 0)),
    ((2, 2, 8, 9), 3, (3, 2), (2, 2), (1, 1)),
    ((1, 2, 12, 12), 2, (4, 4), (4, 4), (2, 2)),
    ((2, 1, 6, 5), 2, (2, 3), (1, 2), (2, 1)),
    ((1, 3, 9, 9), 2, (5, 1), (2, 1), (0, 2)),
]


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES)
def test_conv2d_gradients(x_shape, out_channels, kernel, stride, padding):
    w = R.standard_normal((out_channels, x_shape[1]) + kernel)
    b = R.standard_normal(out_channels)
    assert gradcheck(lambda x, w, b: F.Conv2d(stride, padding)(x, w, b), R.standard_normal(x_shape), w, b)


def direct_cross_correlation(x, w, stride, padding):
    """The convolution by its definition, one output pixel at a time (no kernel flip)."""
    (kh, kw), (sh, sw), (ph, pw) = w.shape[2:], stride, padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((x.shape[0], w.shape[0], (padded.shape[2] - kh) // sh + 1,
                    (padded.shape[3] - kw) // sw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = padded[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", window, w)
    return out


def test_conv2d_matches_direct_cross_correlation():
    x, w = R.standard_normal((2, 3, 6, 7)), R.standard_normal((4, 3, 3, 2))
    out = F.Conv2d((2, 1), (1, 0))(Tensor(x), Tensor(w)).numpy()
    np.testing.assert_allclose(out, direct_cross_correlation(x, w, (2, 1), (1, 0)), atol=1e-12)


BLOCK_CASES = [  # (N, C, H, W), out channels, kernel, stride: kernels 1 or 2 strides wide, no padding
    ((32, 4, 84, 84), 8, (8, 8), (4, 4)),   # the Nature CNN's first layer (its second: 4x4/2)
    ((24, 3, 22, 23), 4, (4, 4), (2, 2)),   # a column no window reaches is dropped
    ((256, 2, 6, 7), 3, (2, 2), (2, 2)),    # non-overlapping windows: one block each
    ((256, 2, 9, 11), 2, (4, 3), (2, 3)),   # different factors per axis
]


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride", BLOCK_CASES)
def test_no_grad_conv_on_blocks_equals_im2col(x_shape, out_channels, kernel, stride):
    """Few-channel convolutions under no_grad run on space-to-depth blocks; recorded ones through
    im2col (gradchecked above). Both give the same output."""
    from rlkit.functions.conv import BLOCKS_MAX_CHANNELS
    from rlkit.kernels import blocks
    x = R.standard_normal(x_shape)
    w, b = R.standard_normal((out_channels, x_shape[1]) + kernel), R.standard_normal(out_channels)
    conv = F.Conv2d(stride, (0, 0))
    with rlkit.no_grad():
        on_blocks = F.Conv2d(stride, (0, 0))(Tensor(x), Tensor(w), Tensor(b)).numpy()
    recorded = conv(Tensor(x, requires_grad=True), Tensor(w), Tensor(b))
    assert hasattr(conv, "saved")  # the recorded call kept its im2col columns for backward
    np.testing.assert_allclose(on_blocks, recorded.numpy(), rtol=1e-10, atol=1e-10)
    assert blocks.block_factors(kernel, stride, (0, 0))
    assert x_shape[1] <= BLOCKS_MAX_CHANNELS


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride", BLOCK_CASES[2:])
def test_first_layer_on_blocks_gradchecks_its_weight_and_bias(x_shape, out_channels, kernel, stride):
    """A recorded convolution whose input needs no gradient (a first layer on data) runs on
    blocks too; its weight and bias gradients are checked against centred differences."""
    x = Tensor(R.standard_normal(x_shape))   # data: no gradient asked
    conv = F.Conv2d(stride, (0, 0))
    conv(x, Tensor(R.standard_normal((out_channels, x_shape[1]) + kernel), requires_grad=True))
    assert conv.block_layout is not None
    assert gradcheck(lambda w, b: F.Conv2d(stride, (0, 0))(x, w, b),
                     R.standard_normal((out_channels, x_shape[1]) + kernel),
                     R.standard_normal(out_channels))


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES[:2])
def test_conv2d_gradients_one_sample_per_chunk(monkeypatch, x_shape, out_channels, kernel, stride,
                                               padding):
    """The input gradient is folded a chunk of the batch at a time (CHUNK_BYTES); with chunks of
    one sample every seam between chunks is crossed."""
    from rlkit.functions import conv
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)
    w = R.standard_normal((out_channels, x_shape[1]) + kernel)
    assert gradcheck(lambda x, w: F.Conv2d(stride, padding)(x, w), R.standard_normal(x_shape), w)


def _spy_on_im2col(monkeypatch) -> list:
    """The batch size of every im2col call a Conv2d makes from now on, in a list."""
    from rlkit.functions import conv
    calls = []
    monkeypatch.setattr(conv, "im2col", lambda x, *geometry: calls.append(len(x)) or im2col(x, *geometry))
    return calls


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES[:2])
@pytest.mark.parametrize("samples_per_chunk", [1, 2])
def test_no_grad_conv_in_chunks_is_the_cross_correlation(monkeypatch, x_shape, out_channels, kernel,
                                                         stride, padding, samples_per_chunk):
    """Without a graph the im2col rows are made and multiplied a chunk of the batch at a time
    (FORWARD_CHUNK_BYTES): chunks of one or two samples over a batch of five, the last short."""
    from rlkit.functions import conv
    x = R.standard_normal((5,) + x_shape[1:])
    w, b = R.standard_normal((out_channels, x_shape[1]) + kernel), R.standard_normal(out_channels)
    expected = direct_cross_correlation(x, w, stride, padding) + b[:, None, None]
    row_bytes = expected.shape[2] * expected.shape[3] * w[0].size * x.itemsize
    monkeypatch.setattr(conv, "FORWARD_CHUNK_BYTES", samples_per_chunk * row_bytes)
    chunks = _spy_on_im2col(monkeypatch)
    with rlkit.no_grad():
        out = F.Conv2d(stride, padding)(Tensor(x), Tensor(w), Tensor(b)).numpy()
    assert chunks == [samples_per_chunk] * (5 // samples_per_chunk) + [1] * (5 % samples_per_chunk)
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_batch_chunks_of_an_empty_batch_on_any_device():
    """No chunk at all for n = 0, on the CPU and where the whole batch is one chunk (CuPy)."""
    from rlkit.functions.conv import _batch_chunks
    assert _batch_chunks(np, 0, 100) == []
    assert _batch_chunks(object(), 0, 100) == []   # any array module but NumPy: the CuPy rule
    assert _batch_chunks(object(), 5, 100) == [slice(0, 5)]


def test_first_layer_on_blocks_one_sample_per_chunk(monkeypatch):
    """Block products are made and summed a chunk at a time: the output and the weight gradient
    match the unchunked im2col path with one sample per chunk."""
    from rlkit.functions import conv
    x_shape, out_channels, kernel, stride = BLOCK_CASES[3]
    x = R.standard_normal(x_shape)
    w, b = R.standard_normal((out_channels, x_shape[1]) + kernel), R.standard_normal(out_channels)
    expected = F.Conv2d(stride, (0, 0))(Tensor(x, requires_grad=True), Tensor(w), Tensor(b)).numpy()
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)
    blocked = F.Conv2d(stride, (0, 0))
    out = blocked(Tensor(x), Tensor(w, requires_grad=True), Tensor(b))
    assert len(blocked.block_layout[0]) == x_shape[0]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
    assert gradcheck(lambda w, b: F.Conv2d(stride, (0, 0))(Tensor(x), w, b), w, b)


def test_shift_scatter_is_the_adjoint_of_shift_add():
    from rlkit.kernels import blocks
    y = R.standard_normal((4, 6, 5, 2, 2, 3))                    # (N, bh, bw, mh, mw, O)
    g = R.standard_normal((4, 5, 4, 3))                          # (N, OH, OW, O)
    scattered = blocks.shift_scatter(g, (2, 2), (6, 5)).reshape(y.shape)
    np.testing.assert_allclose((blocks.shift_add(y, np.empty(g.shape)) * g).sum(), (y * scattered).sum(), rtol=1e-12)


def test_shift_add_sums_the_shifted_block_products_plus_the_bias():
    from rlkit.kernels import blocks
    y = R.standard_normal((2, 4, 3, 2, 2, 3))                    # (N, bh, bw, mh, mw, O)
    bias = R.standard_normal(3)
    out = blocks.shift_add(y, np.empty((2, 3, 2, 3)), bias)       # (N, OH, OW, O)
    n, i, j, o = 1, 2, 1, 2
    expected = y[n, i, j, 0, 0, o] + y[n, i, j + 1, 0, 1, o] + y[n, i + 1, j, 1, 0, o] \
        + y[n, i + 1, j + 1, 1, 1, o] + bias[o]
    assert np.isclose(out[n, i, j, o], expected)


def test_shift_scatter_numba_kernel_matches_the_array_op_path():
    from rlkit.kernels import blocks
    g = R.standard_normal((4, 5, 4, 3)).astype(np.float32)        # (N, OH, OW, O)
    for factors, counts in (((2, 2), (6, 5)), ((2, 1), (7, 4)), ((1, 2), (5, 6))):  # extra blocks read 0
        np.testing.assert_array_equal(blocks.shift_scatter(g, factors, counts),
                                      blocks.shift_scatter_arrays(g, factors, counts))


def test_block_weight_kernel_matches_the_array_op_path_and_the_definition():
    """W[(p, pp, o), (c, q, r)] = w[o, c, p * sh + q, pp * sw + r], from a C-ordered weight and
    from one stored (KH, KW, C, O) (the layer's), for each pair of factors."""
    from rlkit.kernels import blocks
    for kernel, stride, factors in (((8, 8), (4, 4), (2, 2)), ((4, 2), (2, 2), (2, 1)), ((3, 6), (3, 3), (1, 2))):
        w = R.standard_normal((5, 3) + kernel).astype(np.float32)
        for weight in (w, np.ascontiguousarray(w.transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1)):
            w_blocks = blocks.block_weight(weight, stride, factors)
            np.testing.assert_array_equal(w_blocks, blocks.block_weight_arrays(w, stride, factors))
        (sh, sw), mw = stride, factors[1]
        p, pp, o, c, q, r = factors[0] - 1, mw - 1, 4, 2, sh - 1, sw - 1
        assert w_blocks[(p * mw + pp) * 5 + o, (c * sh + q) * sw + r] == w[o, c, p * sh + q, pp * sw + r]


def test_shift_add_numba_kernel_matches_the_array_op_path():
    from rlkit.kernels import blocks
    y = R.standard_normal((4, 6, 5, 2, 2, 3))
    out_shape = (4, 5, 4, 3)
    np.testing.assert_allclose(blocks.shift_add(y, np.empty(out_shape)), blocks.shift_add_arrays(y, out_shape),
                               rtol=1e-12)


def test_block_path_applies_only_to_unpadded_kernels_of_one_or_two_strides():
    from rlkit.kernels.blocks import block_factors
    assert block_factors((8, 8), (4, 4), (0, 0)) == (2, 2)
    assert block_factors((4, 3), (2, 3), (0, 0)) == (2, 1)
    assert block_factors((3, 3), (1, 1), (0, 0)) is None   # 3 strides wide
    assert block_factors((3, 3), (2, 2), (0, 0)) is None   # not a whole number of strides
    assert block_factors((4, 4), (2, 2), (1, 1)) is None   # padded


def channels_last(x_shape):
    """An NCHW case's shape as the (N, H, W, C) that im2col and col2im take."""
    n, c, h, w = x_shape
    return n, h, w, c


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES)
def test_col2im_is_the_adjoint_of_im2col(x_shape, out_channels, kernel, stride, padding):
    x = R.standard_normal(channels_last(x_shape))
    cols = im2col(x, kernel, stride, padding)
    y = R.standard_normal(cols.shape)
    assert np.isclose(np.sum(cols * y), np.sum(x * col2im(y, x.shape, kernel, stride, padding)))


def test_im2col_rows_are_output_pixels_and_columns_window_offsets_then_channels():
    x = R.standard_normal((2, 5, 6, 3))                                 # (N, H, W, C)
    cols = im2col(x, (2, 3), (2, 1), (1, 0))                             # out 3 x 4
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    n, i, j, a, b, ch = 1, 2, 3, 1, 2, 2
    assert cols.shape == (2 * 3 * 4, 2 * 3 * 3)
    assert cols[(n * 3 + i) * 4 + j, (a * 3 + b) * 3 + ch] == padded[n, i * 2 + a, j + b, ch]


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES)
def test_numba_col2im_matches_the_array_op_path(x_shape, out_channels, kernel, stride, padding):
    """The CuPy path (strided adds) and the CPU path (numba) give the same result."""
    shape = channels_last(x_shape)
    cols = im2col(R.standard_normal(shape).astype(np.float32), kernel, stride, padding)
    np.testing.assert_allclose(col2im(cols, shape, kernel, stride, padding),
                               col2im_arrays(cols, shape, kernel, stride, padding), rtol=1e-6)


@pytest.mark.parametrize("kernel,stride,padding", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (0, 0)),
                                                   ((3, 2), (1, 1), (1, 1)), ((2, 3), (1, 2), (0, 1))])
def test_max_pool_gradients_with_overlapping_windows(kernel, stride, padding):
    x = R.permutation(2 * 2 * 7 * 7).reshape(2, 2, 7, 7) * 0.1  # distinct values: no ties
    assert gradcheck(lambda t: F.MaxPool2d(kernel, stride, padding)(t), x)


def test_max_pool_ties_route_to_one_argmax_and_overlaps_accumulate():
    x = Tensor(np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]]), requires_grad=True)
    out = nn.MaxPool2d(kernel_size=2, stride=1)(x)
    np.testing.assert_array_equal(out.numpy()[0, 0], [[1, 1], [1, 1]])
    out.sum().backward()
    # windows at (0,0), (0,1), (1,0) all pick their first maximum; (1,1)'s first max is x[1,1]
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert x.grad.sum() == 4  # exactly one element per window


def test_linear_gradients_and_batched_input():
    layer = nn.Linear(5, 3)
    assert gradcheck_module(layer, R.standard_normal((4, 5)))
    assert gradcheck_module(nn.Linear(4, 2, bias=False), R.standard_normal((2, 3, 4)))


@pytest.mark.parametrize("x_shape", [(2, 300), (32, 300), (33, 300), (4, 8, 300), (300,)])
def test_linear_forward_for_few_rows_and_a_large_weight(x_shape):
    """Up to 32 rows against a large weight the product runs as (W @ x.T).T (faster in
    OpenBLAS); every shape gives x @ W.T + b, C-contiguous, and the same gradients."""
    from rlkit.functions import linear
    w, b = R.standard_normal((200, 300)), R.standard_normal(200)
    assert w.size >= linear.WEIGHT_FIRST_MIN_SIZE
    x = Tensor(R.standard_normal(x_shape), requires_grad=True)
    weight, bias = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    out = F.Linear()(x, weight, bias)
    assert out.data.flags.c_contiguous and out.shape == x_shape[:-1] + (200,)
    np.testing.assert_allclose(out.numpy(), x.numpy() @ w.T + b, rtol=1e-12, atol=1e-12)
    g = R.standard_normal(out.shape)
    out.backward(g)
    g2, x2 = g.reshape(-1, 200), x.numpy().reshape(-1, 300)
    np.testing.assert_allclose(weight.grad, g2.T @ x2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, g @ w, rtol=1e-12, atol=1e-12)


def test_conv_module_gradients():
    assert gradcheck_module(nn.Conv2d(2, 3, kernel_size=(3, 2), stride=(2, 1), padding=1),
                            R.standard_normal((2, 2, 6, 5)))


def test_image_layers_take_channels_last_activations_from_a_convolution():
    """Batch norm, ReLU, max-pooling and a second convolution read the first convolution's
    channels-last output (an NCHW view) and pass their gradients back through it."""
    net = nn.Sequential(nn.Conv2d(2, 3, kernel_size=3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.MaxPool2d(kernel_size=2, stride=1), nn.Conv2d(3, 2, kernel_size=2, stride=2),
                        nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    assert gradcheck_module(net, R.standard_normal((3, 2, 6, 6)))


@pytest.mark.parametrize("layer,shape", [(nn.BatchNorm1d(4), (6, 4)), (nn.BatchNorm2d(3), (4, 3, 3, 2))])
def test_batch_norm_train_mode_gradients(layer, shape):
    layer.weight.data[...] = R.uniform(0.5, 1.5, layer.num_features)
    layer.bias.data[...] = R.standard_normal(layer.num_features)
    assert gradcheck_module(layer, R.standard_normal(shape) * 2 + 1)


def test_batch_norm_statistics_and_eval_mode():
    bn = nn.BatchNorm2d(2, momentum=0.9)
    x = R.standard_normal((8, 2, 3, 3)).astype(np.float32) * 3 + 5
    bn.eval()
    np.testing.assert_allclose(bn(Tensor(x)).numpy(), x / np.sqrt(1 + 1e-5), rtol=1e-6)  # untrained: ~identity
    bn.train()
    y = bn(Tensor(x)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-5)
    bn.eval()
    expected = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(bn(Tensor(x)).numpy(), expected, rtol=1e-5)


def _join_lstm(result):
    output, (h, c) = result
    return rlkit.cat([output.reshape(-1), h.reshape(-1), c.reshape(-1)])


def test_lstm_gradients_over_several_steps_with_given_state():
    lstm = nn.LSTM(3, 4)
    x, h0, c0 = R.standard_normal((2, 5, 3)), R.standard_normal((2, 4)), R.standard_normal((2, 4))
    model = _StatefulLSTM(lstm)
    assert gradcheck_module(model, x, h0, c0, output=_join_lstm)


@pytest.mark.parametrize("dtype,hidden", [(np.float64, 4), (np.float32, 16)])  # step loop, whole kernel
def test_lstm_backward_twice_through_a_retained_graph_gives_the_same_gradients(dtype, hidden):
    # the backward writes its gate gradients over the saved activations unless the graph is kept
    lstm = nn.LSTM(3, hidden).to(dtype=dtype)
    x = Tensor(R.standard_normal((2, 5, 3)).astype(dtype), requires_grad=True)
    loss = (lstm(x)[0] ** 2).sum()
    loss.backward(retain_graph=True)
    first = [x.grad.copy()] + [p.grad.copy() for p in lstm.parameters()]
    x.grad = None
    for p in lstm.parameters():
        p.grad = None
    loss.backward()
    for a, b in zip(first, [x.grad] + [p.grad for p in lstm.parameters()]):
        np.testing.assert_array_equal(a, b)


class _StatefulLSTM(nn.Module):
    """LSTM taking (x, h0, c0) positionally, so gradcheck_module also checks d/dh0 and d/dc0."""

    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h0, c0):
        return self.lstm(x, (h0, c0))


def test_lstm_matches_the_books_step_equations():
    lstm = nn.LSTM(2, 3)
    x = R.standard_normal((1, 2, 2)).astype(np.float32)
    output, (h, c) = lstm(Tensor(x))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h_t, c_t = np.zeros((1, 3)), np.zeros((1, 3))
    for t in range(2):
        z = x[:, t] @ lstm.weight_ih.data.T + h_t @ lstm.weight_hh.data.T + lstm.bias_ih.data + lstm.bias_hh.data
        i, f, o, g = sigmoid(z[:, :3]), sigmoid(z[:, 3:6]), sigmoid(z[:, 6:9]), np.tanh(z[:, 9:])
        c_t = f * c_t + i * g
        h_t = o * np.tanh(c_t)
        np.testing.assert_allclose(output.numpy()[:, t], h_t, rtol=1e-5)
    np.testing.assert_allclose(h.numpy(), h_t, rtol=1e-5)
    np.testing.assert_allclose(c.numpy(), c_t, rtol=1e-5)


def test_lstm_cell_is_one_step_of_the_lstm():
    cell = nn.LSTMCell(3, 4)
    x, h0, c0 = (R.standard_normal(s).astype(np.float32) for s in [(2, 3), (2, 4), (2, 4)])
    h, c = cell(Tensor(x), (Tensor(h0), Tensor(c0)))
    _, (h_seq, c_seq) = nn.LSTM.forward(cell, Tensor(x[:, None]), (Tensor(h0), Tensor(c0)))
    np.testing.assert_array_equal(h.numpy(), h_seq.numpy())
    assert gradcheck_module(nn.LSTMCell(3, 2), R.standard_normal((2, 3)), output=lambda hc: hc[0] + hc[1])


def test_dropout_p_is_the_drop_probability_and_scales_survivors():
    rlkit.manual_seed(0)
    layer = nn.Dropout(p=0.25)
    x = Tensor(np.ones((200, 500), np.float32), requires_grad=True)
    y = layer(x)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01            # 100,000 draws: sd of the mean is 0.0014
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.numpy())    # gradient = mask / keep probability
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="drop probability"):
        nn.Dropout(p=1.0)


def test_activation_modules():
    x = R.standard_normal((3, 4))
    for layer in (nn.ReLU(), nn.Tanh(), nn.Sigmoid()):
        assert gradcheck_module(layer, x)


def test_nature_dqn_shapes_and_parameter_count_from_the_books_table():
    net = nn.nature_cnn(in_channels=4, n_outputs=18)
    x = Tensor(np.zeros((2, 4, 84, 84), np.float32))
    shapes = []
    for layer in net:
        x = layer(x)
        if isinstance(layer, nn.ReLU):
            shapes.append(x.shape)
    assert shapes == [(2, 32, 20, 20), (2, 64, 9, 9), (2, 64, 7, 7), (2, 512)]
    assert x.shape == (2, 18)
    # conv: k*k*C_in*C_out + C_out; fc: in*out + out (the book's table: fc5 has 18 outputs)
    expected = (8 * 8 * 4 * 32 + 32) + (4 * 4 * 32 * 64 + 64) + (3 * 3 * 64 * 64 + 64) \
        + (7 * 7 * 64 * 512 + 512) + (512 * 18 + 18)
    assert net.num_parameters() == expected == 1_693_362


def test_mlp_builder():
    net = nn.mlp([4, 64, 64, 2])
    assert [type(layer).__name__ for layer in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert net(Tensor(np.zeros((3, 4), np.float32))).shape == (3, 2)


def test_lstm_step_forward_from_halved_preactivations_is_the_textbook_step():
    """Both forward paths (numba on NumPy, array ops as on CuPy) give sigmoid(z) gates for
    i, f, o and tanh(z) for g from z with the sigmoid columns halved, and the new c and h."""
    from rlkit.kernels import lstm as kernels
    n, hidden = 3, 5
    z, c_prev = R.standard_normal((n, 4 * hidden)) * 3, R.standard_normal((n, hidden))
    z_half = z.copy()
    z_half[:, :3 * hidden] *= 0.5
    sig = 1 / (1 + np.exp(-z[:, :3 * hidden]))
    i, f, o, g = sig[:, :hidden], sig[:, hidden:2 * hidden], sig[:, 2 * hidden:], np.tanh(z[:, 3 * hidden:])
    c_expected = f * c_prev + i * g
    for cell in (lambda *a: kernels._cell_numba(*a, 0.5), kernels.cell_arrays):
        act, c = np.empty_like(z), np.empty((n, hidden))
        np.tanh(z_half, out=act)
        cell(act, c_prev, c)
        np.testing.assert_allclose(act, np.concatenate([sig, g], axis=1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c, c_expected, rtol=1e-12, atol=1e-12)
    act, c, tanh_c, h = np.empty_like(z), *(np.empty((n, hidden)) for _ in range(3))
    kernels.step_forward(z_half, c_prev, act, c, tanh_c, h)
    np.testing.assert_allclose(h, o * np.tanh(c_expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_numba_kernels_match_the_array_op_path(dtype):
    """Bit for bit, in the arrays' own dtype (the kernels take their constants in it)."""
    from rlkit.kernels import lstm as kernels
    n, hidden = 3, 5
    z = (R.standard_normal((n, 4 * hidden)) * 3).astype(dtype)
    c_prev = R.standard_normal((n, hidden)).astype(dtype)
    states = []
    for cell in (lambda *a: kernels._cell_numba(*a, dtype(0.5)), kernels.cell_arrays):
        act, c = np.tanh(z), np.empty((n, hidden), dtype)
        cell(act, c_prev, c)
        states.append((act, c))
    np.testing.assert_array_equal(states[0][0], states[1][0])
    np.testing.assert_array_equal(states[0][1], states[1][1])
    act, c, tanh_c = states[0][0], states[0][1], np.tanh(states[0][1])
    dh, g_out, dc_start = (R.standard_normal((n, hidden)).astype(dtype) for _ in range(3))
    grads = []
    for backward in (lambda *a: kernels._backward_numba(*a, dtype(1)), kernels.backward_arrays):
        dc, dz = dc_start.copy(), np.empty((n, 4 * hidden), dtype)
        backward(dh, g_out, dc, act, c_prev, tanh_c, dz)   # dc becomes d(previous cell) in place
        grads.append((dz, dc))
    for a, b in zip(*grads):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    for backward in (lambda *a: kernels._backward_numba(*a, dtype(1)), kernels.backward_arrays):
        dc, act_then_dz = dc_start.copy(), act.copy()       # the layer's way: dz overwrites act
        backward(dh, g_out, dc, act_then_dz, c_prev, tanh_c, act_then_dz)
        np.testing.assert_array_equal(act_then_dz, grads[0][0])
        np.testing.assert_array_equal(dc, grads[0][1])


def test_relu_kernels_match_the_array_op_path_at_zero_nan_and_any_layout():
    from rlkit.kernels.relu import relu_backward, relu_forward
    x = np.array([[-1.5, 0.0, 2.0], [np.nan, -0.0, 1e-30]], np.float32)
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]], np.float32)
    for layout in (x, np.asfortranarray(x)):                 # numba kernel, then the fallback
        out, mask = relu_forward(layout)
        np.testing.assert_array_equal(out, x * (x > 0))      # NaN stays NaN
        np.testing.assert_array_equal(mask, x > 0)           # no gradient at 0
        np.testing.assert_array_equal(relu_backward(g, mask), g * (x > 0))
        values, no_mask = relu_forward(layout, with_mask=False)   # a pass without a backward
        assert no_mask is None
        np.testing.assert_array_equal(values, out)
        assert np.array_equal(np.signbit(values), np.signbit(out))   # -0.0 where x < 0, as NumPy
    half = x.astype(np.float16)                                # not a kernel type: the fallback
    np.testing.assert_array_equal(relu_forward(half)[0], half * (half > 0))


def test_relu_writes_its_mask_only_when_recording():
    x = Tensor(R.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    with rlkit.no_grad():
        fn = F.ReLU()
        fn(x)
    assert fn.mask is None
    fn = F.ReLU()
    out = fn(x)
    out.sum().backward()
    np.testing.assert_array_equal(fn.mask, x.data > 0)
    np.testing.assert_array_equal(x.grad, (x.data > 0).astype(np.float32))


def test_relu_kernels_keep_a_channels_last_layout():
    """A convolution's output is NCHW over channels-last memory: the kernels run on it as it
    is, and both passes hand the layer before an array of that layout."""
    from rlkit.kernels.relu import relu_backward, relu_forward
    x = R.standard_normal((2, 4, 3, 5)).astype(np.float32).transpose(0, 3, 1, 2)   # (N, C, H, W)
    out, mask = relu_forward(x)
    np.testing.assert_array_equal(out, x * (x > 0))
    np.testing.assert_array_equal(mask, x > 0)
    values = relu_forward(x, with_mask=False)[0]
    np.testing.assert_array_equal(values, out)
    for layout in (out, mask, values):
        assert layout.transpose(0, 2, 3, 1).flags.c_contiguous
    for g in (R.standard_normal(x.shape).astype(np.float32),         # C-contiguous: a Flatten's
              R.standard_normal((2, 4, 3, 5)).astype(np.float32).transpose(0, 3, 1, 2)):
        g_in = relu_backward(g, mask)
        np.testing.assert_array_equal(g_in, g * (x > 0))
        assert g_in.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES[:2])
def test_conv2d_output_and_input_gradient_are_channels_last_in_memory(x_shape, out_channels, kernel,
                                                                      stride, padding):
    """Both come out NCHW-shaped over (N, H, W, C) memory, so that the next convolution reads them
    without a transposing copy; the output is the reference convolution's, and the input
    gradient its adjoint: sum(g * conv(x)) = sum(x * gx)."""
    x, w = R.standard_normal(x_shape), R.standard_normal((out_channels, x_shape[1]) + kernel)
    conv = F.Conv2d(stride, padding)
    out = conv(Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)).data
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_allclose(out, direct_cross_correlation(x, w, stride, padding), rtol=1e-10, atol=1e-10)
    g = R.standard_normal(out.shape)
    gx, _ = conv.backward(g)
    assert gx.shape == x_shape and gx.transpose(0, 2, 3, 1).flags.c_contiguous
    assert np.isclose(np.sum(g * out), np.sum(x * gx), rtol=1e-10)


def stored_filters_last(array) -> bool:
    """Whether an (O, C, KH, KW) array's memory is (KH, KW, C, O), C-contiguous."""
    return array.transpose(2, 3, 1, 0).flags.c_contiguous


def test_conv_weight_is_stored_filters_last_and_read_without_a_copy():
    """The layer's weight keeps (KH, KW, C, O) memory through an optimiser, loading a state
    dict and training; the im2col path multiplies that memory itself (no rearranged copy), the
    weight gradient comes out in the same layout on both paths (blocks, im2col), and both
    compute what a C-ordered weight gives."""
    from rlkit.functions.conv import _weight_columns
    net = nn.Sequential(nn.Conv2d(4, 8, kernel_size=8, stride=4), nn.ReLU(),
                        nn.Conv2d(8, 16, kernel_size=4, stride=2))
    opt = optim.Adam(net.parameters(), lr=1e-3)
    net.load_state_dict({name: np.ascontiguousarray(a) for name, a in net.state_dict().items()})
    for conv in (net[0], net[2]):
        assert stored_filters_last(conv.weight.data) and np.shares_memory(conv.weight.data, opt.flat)
        assert np.shares_memory(_weight_columns(conv.weight.data), conv.weight.data)
    x = Tensor(R.standard_normal((3, 4, 36, 36)).astype(np.float32))
    opt.zero_grad()
    net(x).sum().backward()
    for conv in (net[0], net[2]):
        assert stored_filters_last(conv.weight.grad) and np.shares_memory(conv.weight.grad, opt.flat_grad)
    reference = nn.Sequential(nn.Conv2d(4, 8, kernel_size=8, stride=4), nn.ReLU(),
                              nn.Conv2d(8, 16, kernel_size=4, stride=2))
    for conv, source in zip((reference[0], reference[2]), (net[0], net[2])):
        conv.weight.data = np.ascontiguousarray(source.weight.data)   # C order: rearranged per call
        conv.bias.data = source.bias.data.copy()
    reference(x).sum().backward()
    np.testing.assert_allclose(reference(x).data, net(x).data, rtol=1e-6)
    for conv, source in zip((reference[0], reference[2]), (net[0], net[2])):
        np.testing.assert_allclose(conv.weight.grad, source.weight.grad, rtol=1e-5, atol=1e-6)
    opt.step()
    assert all(stored_filters_last(conv.weight.data) for conv in (net[0], net[2]))


def test_block_path_output_takes_the_promoted_dtype_of_input_and_weight(monkeypatch):
    """uint8 frames through a first layer: on blocks as through im2col (a recorded input
    gradient cannot be asked of uint8, so im2col is forced here by a padding), the output is
    float32, never the input's uint8."""
    x = R.integers(0, 256, (32, 4, 84, 84)).astype(np.uint8)
    w = R.standard_normal((16, 4, 8, 8)).astype(np.float32)
    im2col_calls = _spy_on_im2col(monkeypatch)
    with rlkit.no_grad():
        on_blocks = F.Conv2d((4, 4), (0, 0))(Tensor(x), Tensor(w)).numpy()
        assert not im2col_calls
        through_im2col = F.Conv2d((4, 4), (4, 4))(Tensor(x[:1]), Tensor(w)).numpy()
    assert im2col_calls == [1]
    assert on_blocks.dtype == through_im2col.dtype == np.float32
    np.testing.assert_allclose(on_blocks[:1], through_im2col[:, :, 1:-1, 1:-1], rtol=1e-5, atol=1e-2)


def test_first_layer_on_blocks_backward_on_an_empty_batch():
    conv, w = F.Conv2d((4, 4), (0, 0)), Tensor(R.standard_normal((2, 4, 8, 8)), requires_grad=True)
    conv(Tensor(np.zeros((0, 4, 84, 84))), w).sum().backward()
    assert conv.block_layout is not None and w.grad.shape == (2, 4, 8, 8) and not w.grad.any()


def test_conv2d_backward_on_an_empty_batch():
    x = Tensor(np.zeros((0, 3, 8, 8)), requires_grad=True)
    w = Tensor(R.standard_normal((2, 3, 3, 3)), requires_grad=True)
    F.Conv2d((1, 1), (0, 0))(x, w).sum().backward()
    assert x.grad.shape == (0, 3, 8, 8) and not w.grad.any()


def test_blocks_only_for_few_input_channels(monkeypatch):
    """Under no_grad a large 4x4/2 convolution takes the blocks on a 4-channel input and the
    channels-last im2col on a 16-channel one."""
    from rlkit.functions.conv import BLOCKS_MAX_CHANNELS
    for channels, on_blocks in ((4, True), (16, False)):
        im2col_calls = _spy_on_im2col(monkeypatch)
        with rlkit.no_grad():
            F.Conv2d((2, 2), (0, 0))(Tensor(R.standard_normal((32, channels, 20, 20))),
                                     Tensor(R.standard_normal((8, channels, 4, 4))))
        assert bool(im2col_calls) != on_blocks
        assert (channels <= BLOCKS_MAX_CHANNELS) == on_blocks


@pytest.mark.parametrize("batch,recorded,padding", [(32, False, 0), (32, True, 0), (1, False, 0),
                                                    (2, False, 4), (2, True, 4)])
def test_input_scale_on_uint8_frames_equals_the_scaled_float_frames(batch, recorded, padding):
    """A first layer with input_scale 1/255 on raw uint8 frames gives bit for bit what it gives
    on the frames converted and scaled in float32 first (the agents' old input), with or
    without a graph: on the direct kernels (or the blocks, where the vectors are slow), and
    through im2col (a padded kernel)."""
    frames = R.integers(0, 256, (batch, 4, 84, 84)).astype(np.uint8)
    scaled = frames.astype(np.float32)
    scaled *= np.float32(1 / 255)
    w = R.standard_normal((16, 4, 8, 8)).astype(np.float32)
    outputs = []
    for x, scale in ((frames, 1 / 255), (scaled, 1.0)):
        conv = F.Conv2d((4, 4), (padding, padding), input_scale=scale)
        weight = Tensor(w, requires_grad=recorded)
        if recorded:
            out = conv(Tensor(x), weight)
            out.sum().backward()
            on_frames_path = conv.block_layout is not None or conv.direct_input is not None
            assert on_frames_path == (padding == 0)
            outputs.append((out.numpy(), weight.grad))
        else:
            with rlkit.no_grad():
                outputs.append((conv(Tensor(x), weight).numpy(),))
    for ours, reference in zip(*outputs):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", CONV_CASES[:2])
def test_conv2d_with_an_input_scale_gradchecks(x_shape, out_channels, kernel, stride, padding):
    """The input gradient of a scaled input is scaled too."""
    w = R.standard_normal((out_channels, x_shape[1]) + kernel)
    assert gradcheck(lambda x, w: F.Conv2d(stride, padding, input_scale=0.3)(x, w),
                     R.standard_normal(x_shape), w)


def test_first_layer_on_blocks_with_an_input_scale_gradchecks_its_weight():
    x_shape, out_channels, kernel, stride = BLOCK_CASES[2]
    x = Tensor(R.integers(0, 256, x_shape).astype(np.uint8))
    assert gradcheck(lambda w, b: F.Conv2d(stride, (0, 0), input_scale=1 / 255)(x, w, b),
                     R.standard_normal((out_channels, x_shape[1]) + kernel),
                     R.standard_normal(out_channels))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_to_blocks_kernel_matches_its_definition(dtype):
    """X[(c, q, r), (n, I, J)] = scale * x[n, c, I * sh + q, J * sw + r], in the asked dtype;
    a row and a column that no block reaches are dropped."""
    from rlkit.kernels import blocks
    x = (R.random((3, 2, 9, 11)) * 255).astype(dtype)
    (sh, sw), (bh, bw) = (2, 3), (4, 3)
    out = blocks.to_blocks(x, (sh, sw), (bh, bw), scale=0.5, dtype=np.float64)
    assert out.dtype == np.float64 and out.shape == (2 * sh * sw, 3 * bh * bw)
    expected = np.empty((2, sh, sw, 3, bh, bw))
    for c, q, r, n, i, j in np.ndindex(*expected.shape):
        expected[c, q, r, n, i, j] = 0.5 * float(x[n, c, i * sh + q, j * sw + r])
    np.testing.assert_array_equal(out, expected.reshape(out.shape))


def test_conv_module_input_scale_shows_in_its_repr():
    assert "input_scale=0.00392157" in repr(nn.Conv2d(4, 16, 8, stride=4, input_scale=1 / 255))
    assert "input_scale" not in repr(nn.Conv2d(4, 16, 8, stride=4))
