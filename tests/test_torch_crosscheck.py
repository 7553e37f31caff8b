"""rlkit against PyTorch: same weights and inputs (float64) give the same outputs and gradients.

Runs only where torch is importable (the ``bench`` extra). Where the two libraries follow
different conventions the test converts explicitly and says so:
- LSTM gate order: rlkit i, f, o, g; torch i, f, g, o (weight rows are permuted when copied);
  rlkit's h and c have no leading layer axis.
- BatchNorm momentum: rlkit's 0.9 keeps 90% of the old running value (torch's 0.1); rlkit
  updates running_var with the biased batch variance, torch with the unbiased one.
- Multiclass hinge: rlkit sums over the wrong classes, torch's multi_margin_loss divides
  that sum by the number of classes.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed: cross-checks need the bench extra")
import torch.nn.functional as TF  # noqa: E402

from rlkit import Tensor, nn, optim  # noqa: E402

R = np.random.default_rng(2024)


def assert_close(ours, theirs, what=""):
    """float64 results agree to rounding (summation order differs between the libraries)."""
    if isinstance(ours, Tensor):
        ours = ours.numpy()
    if isinstance(theirs, torch.Tensor):
        theirs = theirs.detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11, err_msg=what)


def pair(array):
    """The same float64 data as an rlkit Tensor and a torch tensor, both requiring grad."""
    array = np.asarray(array, dtype=np.float64)
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def copy_parameters(ours: nn.Module, theirs: "torch.nn.Module") -> None:
    """Cast ``ours`` to float64 and give ``theirs`` the same values under the same names."""
    ours.to(dtype=np.float64)
    theirs.double()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name).copy_(torch.from_numpy(p.data))


def backward_both(out_ours, out_theirs):
    """Backward of the same random contraction sum(out * w) (every output element weighted)."""
    w = R.standard_normal(out_ours.shape)
    (out_ours * Tensor(w)).sum().backward()
    (out_theirs * torch.from_numpy(w)).sum().backward()


def check_layer(ours, theirs, x_shape, **kwargs):
    """Outputs, input gradient and every parameter gradient of ``ours`` equal ``theirs``'s."""
    copy_parameters(ours, theirs)
    x_ours, x_theirs = pair(R.standard_normal(x_shape))
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert_close(out_ours, out_theirs, "output")
    backward_both(out_ours, out_theirs)
    assert_close(x_ours.grad, x_theirs.grad, "input gradient")
    for name, p in ours.named_parameters():
        assert_close(p.grad, theirs.get_parameter(name).grad, f"gradient of {name}")


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("x_shape,out_channels,kernel,stride,padding", [
    ((2, 3, 7, 7), 4, 3, 1, 0),
    ((2, 3, 8, 8), 4, 3, 2, 1),
    ((2, 2, 8, 9), 3, (3, 2), 1, 1),
    ((1, 2, 9, 10), 3, (2, 4), 2, 0),
    ((2, 4, 20, 20), 5, 8, 4, 0),   # the Nature CNN's first layer, smaller
])
def test_conv2d(x_shape, out_channels, kernel, stride, padding):
    args = (x_shape[1], out_channels, kernel)
    check_layer(nn.Conv2d(*args, stride=stride, padding=padding),
                torch.nn.Conv2d(*args, stride=stride, padding=padding), x_shape)


@pytest.mark.parametrize("x_shape", [(5, 7), (2, 3, 7)])
def test_linear(x_shape):
    check_layer(nn.Linear(7, 4), torch.nn.Linear(7, 4), x_shape)


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 0), ((3, 2), 1, 1), ((2, 3), (1, 2), (1, 1))])
def test_max_pool_with_overlapping_windows(kernel, stride, padding):
    # random float64 input: ties have probability zero, so the winners are unambiguous
    check_layer(nn.MaxPool2d(kernel, stride, padding), torch.nn.MaxPool2d(kernel, stride, padding),
                (2, 3, 7, 8))


def test_nature_cnn():
    """The benchmark's network: same layers, same flatten order, same gradients."""
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(4, 32, 8, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 4, stride=2),
        torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, stride=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(3136, 512), torch.nn.ReLU(), torch.nn.Linear(512, 6))
    check_layer(nn.nature_cnn(4, 6), theirs, (2, 4, 84, 84))


def torch_gate_rows(hidden: int) -> np.ndarray:
    """Row permutation p with torch_weight = rlkit_weight[p]: torch's i, f, g, o from rlkit's i, f, o, g."""
    i, f, o, g = (np.arange(k * hidden, (k + 1) * hidden) for k in range(4))
    return np.concatenate([i, f, g, o])


def test_lstm_over_several_steps_with_given_state():
    n, steps, n_in, hidden = 3, 5, 4, 6
    ours, theirs = nn.LSTM(n_in, hidden, batch_first=True), torch.nn.LSTM(n_in, hidden, batch_first=True)
    ours.to(dtype=np.float64)
    theirs.double()
    rows = torch_gate_rows(hidden)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name + "_l0").copy_(torch.from_numpy(p.data[rows]))
    x_ours, x_theirs = pair(R.standard_normal((n, steps, n_in)))
    h0_ours, h0_theirs = pair(R.standard_normal((n, hidden)))
    c0_ours, c0_theirs = pair(R.standard_normal((n, hidden)))
    out_ours, (h_ours, c_ours) = ours(x_ours, (h0_ours, c0_ours))
    out_theirs, (h_theirs, c_theirs) = theirs(x_theirs, (h0_theirs[None], c0_theirs[None]))
    h_theirs, c_theirs = h_theirs[0], c_theirs[0]  # drop torch's layer axis
    for what, a, b in (("output", out_ours, out_theirs), ("h", h_ours, h_theirs), ("c", c_ours, c_theirs)):
        assert_close(a, b, what)
    # one loss over all three outputs, so the gradients entering through h and c are checked too
    w = [R.standard_normal(t.shape) for t in (out_ours, h_ours, c_ours)]
    sum((t * Tensor(wi)).sum() for t, wi in zip((out_ours, h_ours, c_ours), w)).backward()
    sum((t * torch.from_numpy(wi)).sum() for t, wi in zip((out_theirs, h_theirs, c_theirs), w)).backward()
    for what, a, b in (("x", x_ours, x_theirs), ("h0", h0_ours, h0_theirs), ("c0", c0_ours, c0_theirs)):
        assert_close(a.grad, b.grad, f"gradient of {what}")
    for name, p in ours.named_parameters():
        assert_close(p.grad[rows], theirs.get_parameter(name + "_l0").grad, f"gradient of {name}")


@pytest.mark.parametrize("ours_cls,theirs_cls,x_shape", [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 3)),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6)),
])
def test_batch_norm_train_mode_and_running_statistics(ours_cls, theirs_cls, x_shape):
    ours, theirs = ours_cls(3, momentum=0.9), theirs_cls(3, momentum=0.1)  # both keep 90%
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.normal_()
    copy_parameters(ours, theirs)  # .double() casts torch's running statistics too
    steps = 2
    for step in range(steps):  # fresh batches with a non-zero mean, so running values move
        x_ours, x_theirs = pair(3.0 + 2.0 * R.standard_normal(x_shape))
        out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
        assert_close(out_ours, out_theirs, f"output, step {step}")
        for p in ours.parameters():
            p.grad = None
        theirs.zero_grad()
        backward_both(out_ours, out_theirs)
        assert_close(x_ours.grad, x_theirs.grad, "input gradient")
        for name, p in ours.named_parameters():
            assert_close(p.grad, theirs.get_parameter(name).grad, f"gradient of {name}")
    assert_close(ours.running_mean, theirs.running_mean, "running_mean")
    # Both start at 1 and add 0.1 * 0.9^k of each batch's variance: once 0.9^steps of the start is
    # taken away, torch's sum is rlkit's times n / (n - 1) (unbiased vs biased batch variance).
    count = np.prod(x_shape) // x_shape[1]
    kept = 0.9 ** steps
    assert_close((ours.running_var - kept) * count / (count - 1), theirs.running_var - kept, "running_var")
    # evaluation with the same running statistics gives the same output
    ours.running_var[...] = theirs.running_var.numpy()
    ours.eval()
    theirs.eval()
    x_ours, x_theirs = pair(R.standard_normal(x_shape))
    assert_close(ours(x_ours), theirs(x_theirs), "evaluation output")


# ----------------------------------------------------------------------------- losses
REDUCTIONS = ["mean", "sum", "none"]


def check_loss(ours_fn, theirs_fn, prediction, target, target_grad=True):
    """Loss values and the prediction's (and optionally the target's) gradient agree."""
    p_ours, p_theirs = pair(prediction)
    t_ours, t_theirs = pair(target) if target_grad else (target, torch.from_numpy(target))
    loss_ours, loss_theirs = ours_fn(p_ours, t_ours), theirs_fn(p_theirs, t_theirs)
    assert_close(loss_ours, loss_theirs, "loss")
    backward_both(loss_ours, loss_theirs)
    assert_close(p_ours.grad, p_theirs.grad, "prediction gradient")
    if target_grad:
        assert_close(t_ours.grad, t_theirs.grad, "target gradient")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse(reduction):
    check_loss(lambda p, t: nn.mse_loss(p, t, reduction), lambda p, t: TF.mse_loss(p, t, reduction=reduction),
               R.standard_normal((6, 3)), R.standard_normal((6, 3)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.5, 2.0])
def test_huber(reduction, delta):
    # differences spread over both sides of delta
    check_loss(lambda p, t: nn.huber_loss(p, t, delta, reduction),
               lambda p, t: TF.huber_loss(p, t, reduction=reduction, delta=delta),
               3 * R.standard_normal((8, 4)), R.standard_normal((8, 4)))


def test_huber_at_delta_one_is_smooth_l1():
    check_loss(nn.huber_loss, TF.smooth_l1_loss, 3 * R.standard_normal(32), R.standard_normal(32))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(reduction):
    labels = R.integers(0, 5, 7)
    check_loss(lambda p, t: nn.cross_entropy(p, labels, reduction),
               lambda p, t: TF.cross_entropy(p, torch.from_numpy(labels), reduction=reduction),
               4 * R.standard_normal((7, 5)), labels, target_grad=False)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    check_loss(lambda p, t: nn.binary_cross_entropy_with_logits(p, t, reduction),
               lambda p, t: TF.binary_cross_entropy_with_logits(p, t, reduction=reduction),
               5 * R.standard_normal((6, 3)), R.random((6, 3)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_multiclass_hinge_is_multi_margin_loss_times_classes(reduction, margin):
    n, classes = 9, 4
    labels = R.integers(0, classes, n)
    check_loss(lambda p, t: nn.multiclass_hinge_loss(p, labels, margin, reduction),
               lambda p, t: classes * TF.multi_margin_loss(p, torch.from_numpy(labels), margin=margin,
                                                           reduction=reduction),
               R.standard_normal((n, classes)), labels, target_grad=False)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax(name, axis):
    x_ours, x_theirs = pair(3 * R.standard_normal((4, 5)))
    out_ours, out_theirs = getattr(x_ours, name)(axis=axis), getattr(TF, name)(x_theirs, dim=axis)
    assert_close(out_ours, out_theirs, "output")
    backward_both(out_ours, out_theirs)
    assert_close(x_ours.grad, x_theirs.grad, "input gradient")


def test_gather_q_values_at_actions():
    """Q(s, a) as the DQN step takes it, repeated actions included."""
    actions = np.array([[2], [0], [2], [1]])
    q_ours, q_theirs = pair(R.standard_normal((4, 3)))
    out_ours, out_theirs = q_ours.gather(1, actions), q_theirs.gather(1, torch.from_numpy(actions))
    assert_close(out_ours, out_theirs, "gathered values")
    backward_both(out_ours, out_theirs)
    assert_close(q_ours.grad, q_theirs.grad, "gradient")


# ----------------------------------------------------------------------------- optimisers
@pytest.mark.parametrize("ours_cls,theirs_cls,kwargs", [
    (optim.Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.RMSProp, torch.optim.RMSprop, dict(lr=1e-2, alpha=0.9, eps=1e-3)),
], ids=["adam", "sgd-nesterov", "rmsprop"])
def test_optimizer_steps(ours_cls, theirs_cls, kwargs):
    """Three steps on parameters of two shapes with new gradients each step (so momentum,
    running averages and Adam's bias correction all enter)."""
    shapes = [(3, 4), (5,)]
    values = [R.standard_normal(s) for s in shapes]
    ours = [Tensor(v.copy(), requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    opt_ours, opt_theirs = ours_cls(ours, **kwargs), theirs_cls(theirs, **kwargs)
    for step in range(3):
        grads = [R.standard_normal(s) for s in shapes]
        for p_ours, p_theirs, g in zip(ours, theirs, grads):
            p_ours.grad, p_theirs.grad = g.copy(), torch.from_numpy(g.copy())
        opt_ours.step()
        opt_theirs.step()
        for i, (p_ours, p_theirs) in enumerate(zip(ours, theirs)):
            assert_close(p_ours, p_theirs, f"parameter {i} after step {step + 1}")
