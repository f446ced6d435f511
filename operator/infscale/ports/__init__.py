"""Protocols the core needs from the world (metrics, workloads, node pools, clock)."""
