"""Errors the ports raise, independent of any client library."""


class ClusterError(Exception):
    """The API server refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_message(body: object, fallback: str) -> str:
    """The human message of a Kubernetes Status body (JSON text), or `fallback`."""
    import json

    try:
        message = json.loads(body)["message"] if isinstance(body, str | bytes) else None
    except (ValueError, KeyError, TypeError):
        message = None
    return str(message) if message else fallback
