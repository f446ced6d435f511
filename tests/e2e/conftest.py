"""e2e tests reuse the integration fixtures (real cluster and Prometheus)."""

from tests.integration.conftest import *  # noqa: F403
