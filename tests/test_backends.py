"""The same op and layer cases on every backend.

On the CPU each case is a float64 gradient check. On CUDA (skipped, with the reason, where no
GPU answers) each case must give the CPU's outputs and gradients: CuPy runs the array-op
paths (im2col by slices, scatter-adds) instead of the numba kernels.
"""
import numpy as np
import pytest

from rlkit import Tensor, gradcheck, nn
from rlkit import functions as F
from rlkit.backend import to_device, to_numpy

R = np.random.default_rng(3)


def arrays(*shapes):
    return [R.standard_normal(s) for s in shapes]


CASES = {
    "broadcast_mul_div": (lambda a, b: a * b / (b * b + 1.0), arrays((3, 4), (4,))),
    "matmul_batched": (lambda a, b: a @ b, arrays((2, 3, 4), (4, 5))),
    "softmax_log_softmax": (lambda a: a.softmax(1) + a.log_softmax(1), arrays((3, 5))),
    "sum_mean_max": (lambda a: a.sum(0) + a.mean(0) * a.max(0), arrays((4, 3))),
    "gather_q": (lambda q: q.gather(1, np.array([[1], [0], [2]])), arrays((3, 3))),
    "getitem_array": (lambda q: q[np.arange(3), np.array([2, 2, 0])], arrays((3, 3))),
    "conv_stride2_pad1": (lambda x, w, b: F.Conv2d((2, 2), (1, 1))(x, w, b),
                          arrays((2, 2, 6, 6), (3, 2, 3, 3), (3,))),
    "max_pool_overlap": (lambda x: F.MaxPool2d((3, 3), (2, 2))(x), arrays((2, 2, 7, 7))),
    "linear": (lambda x, w, b: F.Linear()(x, w, b), arrays((4, 5), (3, 5), (3,))),
    "batch_norm": (lambda x, g, b: F.BatchNorm()(x, g, b), arrays((6, 3, 2, 2), (3,), (3,))),
    "lstm": (lambda x, h, c, wi, wh, bi, bh: F.LSTMSequence()(x, h, c, wi, wh, bi, bh)[0],
             arrays((2, 4, 3), (2, 2), (2, 2), (8, 3), (8, 2), (8,), (8,))),
    "huber": (lambda p, t: nn.huber_loss(p, t * 3, reduction="none"), arrays((4, 3), (4, 3))),
    "cross_entropy": (lambda z: nn.cross_entropy(z, np.array([0, 2, 1])), arrays((3, 4))),
}


def run_case(fn, inputs, device):
    """Outputs and input gradients (host arrays) of sum(W * fn(inputs)) on ``device``."""
    tensors = [Tensor(to_device(a, device), requires_grad=True) for a in inputs]
    out = fn(*tensors)
    weights = np.random.default_rng(0).standard_normal(out.shape)
    (out * Tensor(to_device(weights, device))).sum().backward()
    return to_numpy(out.data), [to_numpy(t.grad) for t in tensors]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_case_on_backend(name, device):
    fn, inputs = CASES[name]
    if device == "cpu":
        assert gradcheck(fn, *inputs)
        return
    cpu_out, cpu_grads = run_case(fn, inputs, "cpu")
    gpu_out, gpu_grads = run_case(fn, inputs, "cuda")
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-6, atol=1e-9)
    for gpu, cpu in zip(gpu_grads, cpu_grads):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-6, atol=1e-9)


@pytest.mark.cuda
def test_nature_cnn_train_step_on_cuda_matches_cpu():
    from rlkit import optim
    net_cpu = nn.nature_cnn(4, 6)
    net_gpu = nn.nature_cnn(4, 6)
    net_gpu.load_state_dict(net_cpu.state_dict())
    net_gpu.to("cuda")
    x = R.random((8, 4, 84, 84)).astype(np.float32)
    for net, device in ((net_cpu, "cpu"), (net_gpu, "cuda")):
        opt = optim.Adam(net.parameters(), lr=1e-3)
        loss = (net(Tensor(to_device(x, device))) ** 2).mean()
        loss.backward()
        opt.step()
    for (name, a), b in zip(net_cpu.state_dict().items(), net_gpu.state_dict().values()):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5, err_msg=name)
