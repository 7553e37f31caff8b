"""Explicit 16-lane float32 vectors for numba kernels: one value is one AVX-512 register.

LLVM's loop vectorizer, all numba offers otherwise, vectorizes only innermost loops and keeps
values that live across a loop in memory: it cannot hold a matrix product's block of sums in
registers while it runs over the shared dimension. A numba product written with loops ran 3-4x
slower than OpenBLAS (2-core Xeon, 32 x 128 @ 128 x 512, ad hoc). With values of LLVM's vector
type ``<16 x float>`` a kernel names its registers itself: rlkit/kernels/row_gemm.py keeps 16 of
them as sums and runs at the core's FMA rate.

Use inside ``numba.njit`` functions only:

- :func:`load` / :func:`store`: the 16 values ``array[i, j:j + 16]`` of a float32 2-D array
  whose last axis is contiguous (any row stride; another dtype or rank does not compile, but
  bounds are not checked: the caller keeps ``j + 16`` within the row);
- :func:`splat`: a scalar in every lane; :func:`fma`: ``a * b + c`` lane by lane, one rounding;
- ``+ - * /`` between vectors, lane by lane (IEEE: NaN propagates);
- :func:`clamp`: ``min(max(x, lo), hi)`` that keeps NaN (a NaN input is not clamped into range);
- :func:`tanh`: a rational approximation, within 4e-7 of tanh in float32.

numba's cache of a kernel follows only the kernel's own source file: after a change here, delete
the cached builds of the kernels that use this module (``rlkit/kernels/__pycache__/*.nbi`` and
``*.nbc``), or they keep the old intrinsics.

Where the CPU has no AVX-512, LLVM splits each vector into 2 AVX2 (or 4 NEON) registers: the
results are the same (the tests pass with numba compiling for ``haswell``), the speed differs:
callers choose by :data:`FAST_ON_THIS_CPU`.
"""
from __future__ import annotations

import operator

import numba
import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

LANES = 16
_VECTOR = ir.VectorType(ir.FloatType(), LANES)
_FEATURES = llvm_binding.get_host_cpu_features()
# The CPUs the kernels built on these vectors are for. With AVX-512 one vector is one register.
# With AVX2 and FMA it is two, and a product's 16 sums take all 16 registers twice over, so they
# spill; yet emulated on the 2-core Xeon (NUMBA_CPU_NAME=haswell, OPENBLAS_CORETYPE=Haswell) the
# LSTM layer still ran at 0.847 of the step loop's time (bench_revisions.py, lock-step; not
# measured on an AVX2 CPU). Without FMA each lane's fma is a library call; other architectures
# are unmeasured: there callers keep BLAS.
FAST_ON_THIS_CPU = bool(_FEATURES.get("avx512f") or (_FEATURES.get("avx2") and _FEATURES.get("fma")))


class Float32Vector(types.Type):
    """numba's type for 16 float32 lanes held as one value."""

    def __init__(self):
        super().__init__(name=f"float32x{LANES}")


float32x16 = Float32Vector()


@register_model(Float32Vector)
class _Float32VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _is_float32_matrix(array) -> bool:
    """The typing check of load and store: anything else is a compile error, not a misread."""
    return isinstance(array, types.Array) and array.dtype == types.float32 and array.ndim == 2


def _lanes_pointer(context, builder, signature, args):
    """Pointer to ``array[i, j]`` (from ``args`` = array, i, j), as a pointer to 16 floats."""
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    item = cgutils.get_item_pointer2(context, builder, array.data,
                                     cgutils.unpack_tuple(builder, array.shape),
                                     cgutils.unpack_tuple(builder, array.strides),
                                     array_type.layout, list(args[1:3]))
    return builder.bitcast(item, _VECTOR.as_pointer())


@intrinsic
def load(typingctx, array, i, j):
    """``array[i, j:j + 16]`` of a float32 2-D array as one vector."""
    if not _is_float32_matrix(array):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(_lanes_pointer(context, builder, signature, args), align=4)
    return float32x16(array, i, j), codegen


@intrinsic
def store(typingctx, array, i, j, vector):
    """``array[i, j:j + 16] = vector``."""
    if not _is_float32_matrix(array):
        return None

    def codegen(context, builder, signature, args):
        builder.store(args[3], _lanes_pointer(context, builder, signature, args), align=4)
        return context.get_dummy_value()
    return types.none(array, i, j, vector), codegen


@intrinsic
def splat(typingctx, x):
    """The scalar ``x`` (converted to float32) in all 16 lanes."""
    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], types.float32)
        first = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), value,
                                       ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(first, ir.Constant(_VECTOR, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
    return float32x16(x), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` in every lane, rounded once."""
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3), f"llvm.fma.v{LANES}f32")
        return builder.call(function, args)
    return float32x16(a, b, c), codegen


@intrinsic
def clamp(typingctx, x, lo, hi):
    """``min(max(x, lo), hi)`` in every lane; a NaN lane stays NaN."""
    def codegen(context, builder, signature, args):
        x, lo, hi = args
        x = builder.select(builder.fcmp_ordered("<", x, lo), lo, x)
        return builder.select(builder.fcmp_ordered(">", x, hi), hi, x)
    return float32x16(x, lo, hi), codegen


def _lane_operator(instruction: str):
    """An intrinsic applying the LLVM float ``instruction`` lane by lane to two vectors."""
    @intrinsic
    def apply(typingctx, a, b):
        def codegen(context, builder, signature, args):
            return getattr(builder, instruction)(*args)
        return float32x16(a, b), codegen
    return apply


def _register_operator(python_operator, lane_operator):
    @overload(python_operator)
    def vector_operator(a, b):
        if isinstance(a, Float32Vector) and isinstance(b, Float32Vector):
            return lambda a, b: lane_operator(a, b)


for _python_operator, _instruction in ((operator.add, "fadd"), (operator.sub, "fsub"),
                                       (operator.mul, "fmul"), (operator.truediv, "fdiv")):
    _register_operator(_python_operator, _lane_operator(_instruction))

# tanh(x) = x P(x^2) / Q(x^2), P and Q of degree 4, fitted on |x| <= 9 for the least maximal
# relative error in float64 (2e-8; iteratively reweighted least squares); in float32 the error
# is below 4e-7 (tests/test_vector_kernels.py). Inputs are clamped to +-9.5, which keeps x^8
# finite: there the quotient is past 1 and the output clamp gives exactly +-1, as tanh rounds
# to in float32 from |x| = 9.02 on. Coefficients from the lowest power up.
_TANH_LIMIT = np.float32(9.5)
_TANH_P = tuple(np.float32(c) for c in (9.99999980e-01, 1.33810383e-01, 3.49560096e-03,
                                        2.06092083e-05, 1.33546836e-08))
_TANH_Q = tuple(np.float32(c) for c in (1.0, 4.67143540e-01, 2.58770367e-02,
                                        3.28565209e-04, 7.77659910e-07))


@numba.njit(inline="always")
def _polynomial(coefficients, s):
    """``sum_k coefficients[k] * s**k`` by Horner's rule (``coefficients`` a tuple of 5)."""
    c0, c1, c2, c3, c4 = coefficients
    return fma(fma(fma(fma(splat(c4), s, splat(c3)), s, splat(c2)), s, splat(c1)), s, splat(c0))


@numba.njit(inline="always")
def tanh(x):
    """tanh of every lane (rational approximation, error below 4e-7; NaN stays NaN)."""
    x = clamp(x, splat(-_TANH_LIMIT), splat(_TANH_LIMIT))
    s = x * x
    one = splat(np.float32(1.0))
    # past |x| = 9.1 the quotient exceeds 1: tanh never does
    return clamp(x * _polynomial(_TANH_P, s) / _polynomial(_TANH_Q, s), splat(np.float32(-1.0)), one)
