"""Hot loops: numba kernels for the CPU, each with an array-op twin that also runs under CuPy."""
