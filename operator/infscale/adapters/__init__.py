"""Backends behind the ports, one file each (Prometheus, Deployments, node-pool providers)."""
