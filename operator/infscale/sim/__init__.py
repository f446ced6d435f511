"""Trace replay, queue model, cost accounting, baselines and the oracle, over the same planner."""
