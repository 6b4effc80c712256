"""Composite steps: one step of the seed that runs several capabilities' steps in order."""
