"""infscale: a Kubernetes operator that autoscales ML inference services and their node pools.

The package is layered (enforced by import-linter, see pyproject.toml):
``domain`` is the pure planner core; ``ports`` are the Protocols the core needs from the world;
``adapters`` implement them (one file per backend); ``controller`` is the operator (start-up,
kopf handlers, loop, reconcile cycle); ``sim`` replays traces through the same planner; ``cli``
is the command line; ``labels`` holds the ``infscale.dev/`` label, annotation and taint keys,
below them all.
"""

__version__ = "0.1.0"
