"""Every `infscale.dev/` label, annotation and taint key the operator reads or writes.

The lowest layer (see pyproject.toml): it imports nothing, so every layer may import it.
"""

from __future__ import annotations

# On InferenceServices, set by users.
PAUSED_ANNOTATION = "infscale.dev/paused"
"""`"true"` stops all scaling of the service."""

FIELD_MANAGER = "infscale"
"""The server-side apply field manager of everything infscale writes."""

# On the Deployments and pods infscale owns.
SERVICE_LABEL = "infscale.dev/service"
VARIANT_LABEL = "infscale.dev/variant"
SPEC_HASH_ANNOTATION = "infscale.dev/spec-hash"
"""Hash of the Deployment manifest infscale last applied."""

# On nodes.
POOL_LABEL = "infscale.dev/node-pool"
"""The InferenceNodePool that created the node."""
STARTUP_TAINT = "infscale.dev/provisioning"
"""Keeps pods off a created node until it is Ready."""
DRAINING_ANNOTATION = "infscale.dev/draining-since"
EMPTY_ANNOTATION = "infscale.dev/empty-since"
REMOVING_ANNOTATION = "infscale.dev/removing-since"
"""Removal asked for; the provider deletes the node later (clusterapi)."""
DO_NOT_DISRUPT_ANNOTATION = "infscale.dev/do-not-disrupt"
"""`"true"` (set by users) protects the node from scale-down."""

# Set by others: a node with one of these taints is about to go (a spot interruption notice).
TERMINATION_TAINTS = (
    "aws-node-termination-handler/spot-itn",  # AWS Node Termination Handler, spot interruption
    "cloud.google.com/impending-node-termination",  # GKE, spot and preemptible VMs
)
"""infscale counts such a node as gone: it orders a replacement at once, while the node still
serves, and never removes it itself (its provider does)."""
