"""Install CRDs into the test cluster and wait until they are served.

Parallel test workers (pytest-xdist) each install them once per session, possibly at the same
moment: a create that finds the CRD created meanwhile, or a replace that finds it changed
meanwhile (409), reads it again and retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.integration import waiting

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
ATTEMPTS = 10


def install(api_client: client.ApiClient) -> None:
    """Create or replace every CRD in crds/ and wait until each is Established."""
    install_bodies(
        api_client, [yaml.safe_load(path.read_text()) for path in sorted(CRD_DIR.glob("*.yaml"))]
    )


def install_bodies(api_client: client.ApiClient, bodies: Iterable[dict[str, Any]]) -> None:
    """Create or replace each CRD and wait until each is Established."""
    extensions = client.ApiextensionsV1Api(api_client)
    names = [_apply(extensions, body) for body in bodies]

    def established(name: str) -> bool:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status and crd.status.conditions) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for name in names:
        waiting.until(partial(established, name), timeout_s=30, what=f"CRD {name} Established")


def _apply(extensions: client.ApiextensionsV1Api, body: dict[str, Any]) -> str:
    """Create the CRD, or replace it at its current resourceVersion; returns its name."""
    name = str(body["metadata"]["name"])
    for _ in range(ATTEMPTS):
        try:
            current = extensions.read_custom_resource_definition(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
            try:
                extensions.create_custom_resource_definition(body)
                return name
            except client.ApiException as error:
                if error.status != 409:  # AlreadyExists: another worker created it meanwhile
                    raise
                continue
        version = current.metadata.resource_version
        replacement = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
        try:
            extensions.replace_custom_resource_definition(name, replacement)
            return name
        except client.ApiException as error:
            if error.status != 409:  # Conflict: another worker replaced it meanwhile
                raise
    raise AssertionError(f"CRD {name}: still conflicting after {ATTEMPTS} attempts")
