"""Errors the ports raise, independent of any client library."""


class ClusterError(Exception):
    """The API server refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
