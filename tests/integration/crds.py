"""Install the generated CRDs into the test cluster and wait until they are served."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import yaml
from kubernetes import client

from tests.integration import waiting

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


def install(api_client: client.ApiClient) -> None:
    """Create or replace every CRD in crds/ and wait until each is Established."""
    extensions = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        names.append(name)
        try:
            current = extensions.read_custom_resource_definition(name)
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(name, body)
        except client.ApiException as error:
            if error.status != 404:
                raise
            extensions.create_custom_resource_definition(body)

    def established(name: str) -> bool:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status and crd.status.conditions) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for name in names:
        waiting.until(partial(established, name), timeout_s=30, what=f"CRD {name} Established")
