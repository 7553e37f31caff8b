"""rlkit: a reinforcement-learning toolkit on its own NumPy/CuPy autograd engine."""
