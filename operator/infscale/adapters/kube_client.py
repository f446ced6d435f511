"""The Kubernetes API client: in-cluster credentials when running in a pod, else KUBECONFIG."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubernetes import client, config
from urllib3 import exceptions as urllib3_errors
from urllib3.util.retry import Retry

from infscale.ports import errors

THROTTLE_RETRY = Retry(
    total=6,
    connect=2,
    read=0,
    status=6,
    status_forcelist=(429,),
    allowed_methods=None,  # a 429 means the request was not served: safe to repeat any verb
    backoff_factor=0.25,
    backoff_max=8,
    respect_retry_after_header=True,
    raise_on_status=False,  # out of retries: the 429 surfaces as an ApiException
)
"""API Priority and Fairness answers 429 with Retry-After when it sheds load: wait and retry.
Conflicts (409) need no retry here: Deployments are server-side applied with force and status
is merge-patched, neither carries a resourceVersion; the Lease handles its own."""


UNREACHABLE = (urllib3_errors.HTTPError, OSError)
"""What a request raises when the API server cannot be reached (refused, reset, timed out)."""


def api_client() -> client.ApiClient:
    """A client for the cluster the operator runs against."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.retries = THROTTLE_RETRY
    return client.ApiClient(configuration)


@contextlib.contextmanager
def failing_as(action: str) -> Iterator[None]:
    """A failed request becomes a ClusterError naming ``action`` (e.g. "listing nodes"): the
    cycle logs one line and retries next time instead of a traceback."""
    try:
        yield
    except client.ApiException as error:
        message = errors.api_message(error.body, f"{error.status} {error.reason}")
        raise errors.ClusterError(f"{action}: {message}", status=error.status) from error
    except UNREACHABLE as error:
        raise errors.ClusterError(f"{action}: {error}") from error


def listing(what: str) -> contextlib.AbstractContextManager[None]:
    """:func:`failing_as` for a list of ``what``."""
    return failing_as(f"listing {what}")


PAGE = 500
"""Objects per list request: a cycle holds one page's parsed JSON at a time, not the whole
cluster's (at 10,000 pods, hundreds of MiB)."""


def list_pages(call: Callable[..., Any], what: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every object a list call returns, read ``PAGE`` at a time (``limit`` and ``continue``).
    A failed page becomes a ClusterError naming ``what``, as in :func:`listing`."""
    token: str | None = None
    while True:
        with listing(what):
            response = call(limit=PAGE, _continue=token, _preload_content=False, **kwargs)
        listed = json.loads(response.data)
        yield from listed["items"]
        token = (listed.get("metadata") or {}).get("continue")
        if not token:
            return


def controller_uid(manifest: Mapping[str, Any]) -> str | None:
    """The uid of the object that controls ``manifest`` (its controller ownerReference)."""
    for ref in (manifest.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def not_ours(found: Mapping[str, Any], owner_uid: str) -> str | None:
    """Why infscale must leave an existing object alone: something other than the
    InferenceService ``owner_uid`` controls it (a team's own Service of the same name, say); None
    when that service does. ``found`` is the object as JSON."""
    metadata = found.get("metadata") or {}
    refs = [r for r in metadata.get("ownerReferences") or [] if r.get("controller")]
    if any(r.get("uid") == owner_uid for r in refs):
        return None
    by = f"controlled by {refs[0].get('kind')} {refs[0].get('name')}" if refs else "not infscale's"
    return (
        f"{found.get('kind', 'the object')} {metadata.get('namespace')}/{metadata.get('name')} "
        f"already exists and is {by}: infscale leaves it as it is (rename the variant, or "
        "remove that object)"
    )
