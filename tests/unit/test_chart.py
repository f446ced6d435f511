"""The Helm chart: generated parts match their sources; optional pieces render; the dashboard."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from infscale.cli import main as cli
from infscale.controller import chart_values, telemetry
from infscale.controller import settings as settings_module
from infscale.controller.settings import PlannerTuning
from infscale.domain.tuning import PlannerSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "infscale"


def test_values_schema_is_generated_from_the_settings_model() -> None:
    assert (CHART / "values.schema.json").read_text() == chart_values.render(), (
        "charts/infscale/values.schema.json is stale: run hack/gen-crds.sh"
    )


def test_chart_crds_match_crds_dir() -> None:
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text(), (
            f"charts/infscale/crds/{crd.name} is stale: run hack/gen-crds.sh"
        )


def test_default_values_validate_and_match_the_model_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    parsed = chart_values.ChartValues.model_validate(values)
    assert parsed == chart_values.ChartValues()


# ---- rendering with the optional monitoring pieces on (helm template, no cluster) ----

DASHBOARD = CHART / "dashboards" / "infscale.json"
HACK = ROOT / "hack"


def _pinned_helm() -> Path:
    versions = dict(
        line.split("#")[0].strip().split("=", 1)
        for line in (HACK / "versions.env").read_text().splitlines()
        if "=" in line.split("#")[0]
    )
    cache = Path(os.environ.get("INFSCALE_CACHE", Path.home() / ".cache" / "infscale"))
    return cache / "tools" / f"helm-{versions['HELM_VERSION']}" / "bin" / "helm"


@pytest.fixture(scope="session")
def helm() -> str:
    """helm from PATH, else the pinned build in the tools cache (hack/tools.sh builds it)."""
    found = shutil.which("helm")
    if found:
        return found
    pinned = _pinned_helm()
    if not pinned.is_file():
        subprocess.run([str(HACK / "tools.sh"), "helm"], check=True)
    return str(pinned)


def helm_template(
    helm: str, *sets: str, check: bool = True, values: Path | None = None
) -> list[dict[str, Any]]:
    files = ["--values", str(values)] if values else []
    result = subprocess.run(
        [helm, "template", "infscale", str(CHART), "--namespace", "infscale-system",
         "--kube-version", "v1.33.13", *files, *(f"--set={s}" for s in sets)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if not check:
        assert result.returncode != 0, "helm template accepted invalid values"
        raise HelmRejectedError(result.stderr)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


class HelmRejectedError(Exception):
    pass


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= document.keys(), document
        assert document["kind"] not in kinds, f"two {document['kind']} objects"
        kinds[document["kind"]] = document
    return kinds


def test_defaults_render_no_servicemonitor_and_no_dashboard(helm: str) -> None:
    kinds = by_kind(helm_template(helm))
    assert "ServiceMonitor" not in kinds
    assert "ConfigMap" not in kinds
    assert kinds["Deployment"]["spec"]["replicas"] == 1


def test_servicemonitor_scrapes_the_operators_metrics_port(helm: str) -> None:
    kinds = by_kind(
        helm_template(helm, "serviceMonitor.enabled=true", "serviceMonitor.labels.release=kps",
                      "serviceMonitor.interval=15s")
    )  # fmt: skip
    monitor, service, deployment = kinds["ServiceMonitor"], kinds["Service"], kinds["Deployment"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "infscale-system"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    # The ServiceMonitor selects the metrics Service, in the release namespace ...
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["infscale-system"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "15s"}
    # ... whose `metrics` port reaches the container port the operator serves /metrics on.
    [port] = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    [target] = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert target["containerPort"] == port["port"] == 8081
    assert f"--metrics-address=0.0.0.0:{target['containerPort']}" in container["args"]


def test_grafana_dashboard_configmap_holds_the_dashboard(helm: str) -> None:
    kinds = by_kind(
        helm_template(helm, "grafanaDashboard.enabled=true",
                      "grafanaDashboard.annotations.grafana_folder=infscale")
    )  # fmt: skip
    config_map = kinds["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "infscale-system"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "infscale"}
    assert json.loads(config_map["data"]["infscale.json"]) == json.loads(DASHBOARD.read_text())
    elsewhere = by_kind(
        helm_template(helm, "grafanaDashboard.enabled=true", "grafanaDashboard.namespace=grafana")
    )
    assert elsewhere["ConfigMap"]["metadata"]["namespace"] == "grafana"


def test_replicas_zero_installs_everything_but_runs_no_operator_pod(helm: str) -> None:
    kinds = by_kind(helm_template(helm, "replicas=0"))
    assert kinds["Deployment"]["spec"]["replicas"] == 0
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds.keys()


def test_the_arrival_rate_template_reaches_the_operator_verbatim(helm: str, tmp_path: Path) -> None:
    # Quotes, braces, commas, `#` and `$1`: nothing of it may be mangled on the way to argv.
    query = (
        'sum(label_replace(rate(istio_requests_total{reporter="destination",'
        'destination_service_namespace="$namespace",destination_service_name="$service"}[1m]),'
        ' "x", "$1", "y", "(.*)")) # gateway'
    )
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"prometheus": {"arrivalRateQuery": query}}))
    for forbid in (False, True):
        sets = ["prometheus.serviceArrivalQueries=false"] if forbid else []
        deployment = by_kind(helm_template(helm, *sets, values=values))["Deployment"]
        argv = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        args = cli.build_parser().parse_args(argv)
        assert args.arrival_rate_query == query
        assert args.forbid_service_arrival_queries is forbid


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("serviceMonitor.interval=soon", "interval"),
        ("serviceMonitor.interval=30s30s", "interval"),
        ("serviceMonitor.enable=true", "enable"),
        ("grafanaDashboard.labels=x", "labels"),
        ("replicas=-1", "replicas"),
        ("podDisruptionBudget.maxUnavailable=0", "maxUnavailable"),
        ("nodeSelector.pool=1", "nodeSelector"),
        ("tolerations.key=x", "tolerations"),
        ("priorityClassName=1", "priorityClassName"),
    ],
)
def test_bad_monitoring_and_placement_values_are_rejected_by_the_schema(
    helm: str, setting: str, field: str
) -> None:
    with pytest.raises(HelmRejectedError, match=field):
        helm_template(helm, setting, check=False)


# ---- where the operator pod runs, and what may evict it ----

SCHEDULING = (
    "priorityClassName=system-cluster-critical",
    "nodeSelector.infscale\\.dev/role=system",
    "tolerations[0].key=CriticalAddonsOnly",
    "tolerations[0].operator=Exists",
    "topologySpreadConstraints[0].maxSkew=1",
    "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
    "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    "topologySpreadConstraints[1].maxSkew=1",
    "topologySpreadConstraints[1].topologyKey=kubernetes.io/hostname",
    "topologySpreadConstraints[1].whenUnsatisfiable=DoNotSchedule",
    "topologySpreadConstraints[1].labelSelector.matchLabels.team=platform",
)


def test_defaults_place_one_operator_pod_anywhere_with_no_disruption_budget(helm: str) -> None:
    kinds = by_kind(helm_template(helm))
    assert "PodDisruptionBudget" not in kinds  # one pod alone has nothing to keep
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    placement = {"priorityClassName", "nodeSelector", "tolerations", "affinity"}
    assert not placement & pod.keys()
    assert "topologySpreadConstraints" not in pod


def test_replicas_keep_one_pod_through_evictions_on_different_nodes(helm: str) -> None:
    kinds = by_kind(helm_template(helm, "replicas=2"))
    deployment, budget = kinds["Deployment"], kinds["PodDisruptionBudget"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["namespace"] == "infscale-system"
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    [term] = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == deployment["spec"]["selector"]
    off = by_kind(helm_template(helm, "replicas=2", "podDisruptionBudget.enabled=false"))
    assert "PodDisruptionBudget" not in off
    two = by_kind(helm_template(helm, "replicas=3", "podDisruptionBudget.maxUnavailable=2"))
    assert two["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 2


def test_scheduling_values_reach_the_operator_pod(helm: str) -> None:
    kinds = by_kind(helm_template(helm, "replicas=2", *SCHEDULING))
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"infscale.dev/role": "system"}
    assert pod["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
    zone, host = pod["topologySpreadConstraints"]
    # A constraint without a selector counts the operator's own pods; one with it keeps it.
    assert zone["labelSelector"] == deployment["spec"]["selector"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"
    assert host["labelSelector"] == {"matchLabels": {"team": "platform"}}
    own = by_kind(
        helm_template(helm, "replicas=2", "affinity.nodeAffinity.requiredDuringScheduling"
                      "IgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
                      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                      ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists")
    )  # fmt: skip
    assert own["Deployment"]["spec"]["template"]["spec"]["affinity"].keys() == {"nodeAffinity"}


# ---- the dashboard queries only what the operator exports ----


def exported_series() -> dict[str, set[str]]:
    """Every series name the operator's /metrics can carry, with its label names."""
    labels = {
        metric._name: set(metric._labelnames)
        for metric in vars(telemetry).values()
        if isinstance(metric, MetricWrapperBase)
    }
    series: dict[str, set[str]] = {}
    for family in telemetry.REGISTRY.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
        }[family.type]
        for suffix in suffixes:
            extra = {"le"} if suffix == "_bucket" else set()
            # process_* (ProcessCollector) carry no labels
            series[family.name + suffix] = labels.get(family.name, set()) | extra
    return series


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return queries


def test_dashboard_is_grafana_json_with_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["panels"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_every_metric_the_dashboard_queries_is_exported_with_those_labels() -> None:
    series = exported_series()
    used: set[str] = set()
    for query in dashboard_queries():
        names = set(re.findall(r"\binfscale_[a-z0-9_]+\b", query))
        assert names, f"no infscale metric in {query!r}"
        unknown = names - series.keys()
        assert not unknown, f"{query!r} reads {unknown}, which the operator does not export"
        grouped = re.findall(r"\bby \(([^)]*)\)", query) + re.findall(r"\{([^}]*)\}", query)
        label_names = {
            label.strip().split("=")[0].rstrip("!~")
            for group in grouped
            for label in group.split(",")
            if label.strip()
        }
        label_names |= set(re.findall(r"label_values\([^,]+,\s*(\w+)\)", query))
        available = set.union(*(series[name] for name in names))
        assert label_names <= available, f"{query!r} uses labels {label_names - available}"
        used |= names
    # the operator's own families; the standard process_* ones are on every process dashboard
    families = {f.name for f in telemetry.REGISTRY.collect() if f.name.startswith("infscale_")}
    shown = {family for family in families if any(name.startswith(family) for name in used)}
    assert shown == families, f"not on the dashboard: {families - shown}"


# ---- the planner's tuning ----


def test_planner_values_reach_the_planner_and_defaults_pass_nothing(helm: str) -> None:
    def planner_of(*sets: str) -> Any:
        deployment = by_kind(helm_template(helm, *sets))["Deployment"]
        argv = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return cli.build_parser().parse_args(argv).planner

    assert planner_of() is None
    tuned = planner_of("planner.marginSigmas=2", "planner.seasonSeconds=0").apply()
    defaults = PlannerSettings()
    assert (tuned.margin_sigmas, tuned.season_s) == (2.0, 0.0)
    assert dataclasses.replace(tuned, margin_sigmas=1.0, season_s=3600.0) == defaults


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("planner.marginSigma=2", "marginSigma"),  # a typo is not silently ignored
        ("planner.targetUtilization=2", "targetUtilization"),
        ("planner.seasonPeriods=0", "seasonPeriods"),
    ],
)
def test_bad_planner_values_are_rejected_by_the_schema(helm: str, setting: str, field: str) -> None:
    with pytest.raises(HelmRejectedError, match=field):
        helm_template(helm, setting, check=False)


def test_the_operator_refuses_planner_tuning_no_planner_could_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for text, says in [
        ('{"peakHoldSeconds": 1200}', "exceeds planner.peakHoldMaxSeconds (900)"),
        ('{"marginSigmas": -1}', "marginSigmas: Input should be greater than or equal to 0"),
        ("{marginSigmas: 1}", "Invalid JSON"),
    ]:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["operator", "--planner", text])
        assert says in capsys.readouterr().err


def test_the_documented_planner_defaults_are_the_planners() -> None:
    defaults = PlannerSettings()
    commented = yaml.safe_load(
        "\n".join(
            line.removeprefix("#")
            for line in (CHART / "values.yaml").read_text().splitlines()
            if re.match(r"#  [a-z]\w+: ", line)
        )
    )
    fields = PlannerTuning.model_fields
    assert set(commented) == {f.alias for f in fields.values()}
    for name, field in fields.items():
        default = (
            1  # no PlannerSettings field: it divides their durations
            if name == "time_scale"
            else getattr(defaults, settings_module.PLANNER_FIELD_NAMES.get(name, name))
        )
        assert commented[field.alias] == default, field.alias
        shown = str(default).lower() if isinstance(default, bool) else f"{default:g}"
        assert f"[{shown}" in (field.description or ""), (name, field.description)


def test_the_operators_planner_runs_with_the_tuning() -> None:
    from kubernetes import client

    from infscale.controller import wiring
    from infscale.controller.settings import OperatorSettings

    tuning = PlannerTuning.model_validate({"marginSigmas": 2, "peakHoldMaxSeconds": 600})
    adapters = wiring.adapters(OperatorSettings(planner=tuning), client.ApiClient())
    assert adapters.decider.cfg == dataclasses.replace(
        PlannerSettings(), margin_sigmas=2.0, peak_hold_max_s=600.0
    )


def test_the_operator_releases_nodes_as_soon_as_the_benchmarked_planner() -> None:
    # The benchmark replays the planner's node rule (surplus empty 120 s, 180 s after growth);
    # a longer cool-down at the node would make the deployed operator dearer than measured.
    from infscale.controller.settings import OperatorSettings
    from infscale.domain import nodes

    cooldowns = {
        chart_values.ChartValues().operator.node_scale_down_cooldown_seconds,
        OperatorSettings().node_scale_down_cooldown_seconds,
        nodes.PoolLimits(0, 1).scale_down_cooldown_s,
        cli.build_parser().parse_args(["operator"]).node_cooldown,
    }
    assert len(cooldowns) == 1
    assert cooldowns.pop() <= PlannerSettings().node_unneeded_s


def test_a_time_scale_divides_the_planners_own_durations() -> None:
    base = PlannerSettings()
    tuned = PlannerTuning.model_validate({"timeScale": 15, "peakHoldMaxSeconds": 600}).apply()
    assert tuned.peak_hold_max_s == 40
    assert tuned.miss_memory_s == base.miss_memory_s / 15
    assert tuned.level_tau_s == base.level_tau_s / 15
    assert tuned.solver_time_limit_s == base.solver_time_limit_s  # the machine's time
    assert tuned.margin_sigmas == base.margin_sigmas  # not a duration
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        PlannerTuning.model_validate({"timeScale": 0.5})


def test_the_query_timeout_and_write_concurrency_reach_the_operator(helm: str) -> None:
    def args_of(*sets: str) -> Any:
        deployment = by_kind(helm_template(helm, "prometheus.url=http://p:9090", *sets))
        argv = deployment["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
        return cli.build_parser().parse_args(argv)

    defaults, cli_defaults = args_of(), cli.build_parser().parse_args(["operator"])
    assert (defaults.prometheus_timeout, defaults.write_concurrency) == (
        cli_defaults.prometheus_timeout,
        cli_defaults.write_concurrency,
    )
    tuned = args_of("prometheus.timeoutSeconds=30", "operator.writeConcurrency=16")
    assert (tuned.prometheus_timeout, tuned.write_concurrency) == (30.0, 16)
