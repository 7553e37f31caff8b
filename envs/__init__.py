"""Gymnasium environments of the seed book: RoomExit, Gridworld and Atari Pong."""
