"""The Kubernetes API client: in-cluster credentials when running in a pod, else KUBECONFIG."""

from __future__ import annotations

from kubernetes import client, config


def api_client() -> client.ApiClient:
    """A client for the cluster the operator runs against."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    except config.ConfigException:
        loaded = config.new_client_from_config()  # type: ignore[no-untyped-call]
        assert isinstance(loaded, client.ApiClient)
        return loaded
