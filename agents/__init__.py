"""Agents: tabular Q-learning and planners, DQN, policy gradients."""
