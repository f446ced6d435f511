"""Entry point of the ``infscale`` command."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import uuid
from typing import TYPE_CHECKING

import infscale

if TYPE_CHECKING:
    from infscale.controller.settings import PlannerTuning


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="infscale", description=infscale.__doc__)
    parser.add_argument("--version", action="version", version=f"infscale {infscale.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("operator", help="run the operator against the current cluster")
    run.add_argument(
        "--interval", type=float, default=15.0, help="seconds between cycles (default 15)"
    )
    run.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="manage only this namespace (repeatable; default: all namespaces)",
    )
    run.add_argument(
        "--pool",
        action="append",
        default=[],
        help="size only this InferenceNodePool's nodes (repeatable; default: every pool)",
    )
    run.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--node-cooldown",
        type=float,
        default=120.0,
        help="seconds a node stays empty before it is removed (default 120)",
    )
    run.add_argument(
        "--max-node-changes", type=int, default=2, help="nodes added/removed per pool per cycle"
    )
    run.add_argument(
        "--write-concurrency", type=int, default=8, help="services written at once (default 8)"
    )
    run.add_argument("--prometheus-url", default=None, help="Prometheus base URL")
    run.add_argument("--prometheus-token-file", default=None, help="bearer token file")
    run.add_argument("--prometheus-ca-file", default=None, help="CA bundle for Prometheus' TLS")
    run.add_argument(
        "--prometheus-basic-auth-file", default=None, help="file holding user:password"
    )
    run.add_argument(
        "--memory-save-seconds",
        type=float,
        default=300.0,
        help="seconds between saves of the planner's memory in status (0: never; default 300)",
    )
    run.add_argument(
        "--rate-window", type=int, default=60, help="seconds of PromQL rate() (default 60)"
    )
    run.add_argument(
        "--arrival-rate-query",
        default=None,
        help="PromQL of each service's arrival rate at a gateway, with $namespace and $service",
    )
    run.add_argument(
        "--forbid-service-arrival-queries",
        action="store_true",
        help="ignore spec.metrics.arrivalRateQuery (tenants' PromQL) and use only the template",
    )
    run.add_argument(
        "--planner",
        type=_planner_tuning,
        default=None,
        metavar="JSON",
        help='planner tuning, e.g. {"marginSigmas": 2} (the chart\'s `planner` values)',
    )
    run.add_argument(
        "--metrics-address", default=None, help="serve operator metrics, e.g. 0.0.0.0:8081"
    )
    run.add_argument(
        "--prometheus-timeout", type=float, default=10.0, help="seconds per PromQL query"
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="act only while holding a Lease (run several replicas for high availability)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="namespace of the Lease (default: $POD_NAMESPACE, else default)",
    )
    run.add_argument("--leader-election-id", default="infscale-leader", help="the Lease's name")
    run.add_argument(
        "--lease-duration", type=float, default=15.0, help="seconds (client-go default 15)"
    )
    run.add_argument(
        "--renew-deadline", type=float, default=10.0, help="seconds (client-go default 10)"
    )
    run.add_argument("--retry-period", type=float, default=2.0, help="seconds (default 2)")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    from infscale.emulator import server as emulator

    emulate = commands.add_parser(
        "emulator", help="EMULATED model servers: replay a trace, export their metrics"
    )
    emulator.add_arguments(emulate)
    from infscale.cli import demo

    demo.add_arguments(commands.add_parser("demo", help="operator + emulator + live view"))
    from infscale.cli import bench_live

    bench_live.add_arguments(
        commands.add_parser(
            "bench-live", help="infscale vs the real HPA + Karpenter, live, same emulated traffic"
        )
    )
    from infscale.cli import whatif

    whatif.add_arguments(
        commands.add_parser(
            "whatif",
            help="replay a trace against your manifests: infscale and the baselines",
            description=whatif.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return parser


def _planner_tuning(text: str) -> PlannerTuning:
    from pydantic import ValidationError

    from infscale.controller.settings import PlannerTuning

    try:
        return PlannerTuning.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'planner'}: {e['msg']}"
            for e in error.errors()
        )
        raise argparse.ArgumentTypeError(problems) from None


def run_operator(args: argparse.Namespace) -> int:
    """Run the kopf operator until it is stopped."""
    import kopf

    from infscale.adapters import kube_client
    from infscale.controller import handlers, runtime, wiring
    from infscale.controller.settings import OperatorSettings

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kopf logs every successful handler call; infscale logs its own decisions instead.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    settings = OperatorSettings(
        interval_seconds=args.interval,
        namespaces=tuple(args.namespace),
        pools=tuple(args.pool),
        node_scale_down_cooldown_seconds=args.node_cooldown,
        max_node_changes_per_cycle=args.max_node_changes,
        write_concurrency=args.write_concurrency,
        prometheus_url=args.prometheus_url,
        prometheus_bearer_token_file=args.prometheus_token_file,
        prometheus_ca_file=args.prometheus_ca_file,
        prometheus_basic_auth_file=args.prometheus_basic_auth_file,
        metrics_rate_window_seconds=args.rate_window,
        prometheus_timeout_seconds=args.prometheus_timeout,
        metrics_staleness_seconds=max(1.5 * args.rate_window, 10.0),
        planner_memory_save_seconds=args.memory_save_seconds,
        arrival_rate_query=args.arrival_rate_query,
        service_arrival_queries=not args.forbid_service_arrival_queries,
        **({"planner": args.planner} if args.planner else {}),
    )
    if args.planner:
        logging.getLogger("infscale").info(
            "planner tuning: %s", args.planner.model_dump_json(by_alias=True, exclude_none=True)
        )
    api_client = kube_client.api_client()
    elector = None
    if args.leader_elect:
        from infscale.controller import leader

        identity = os.environ.get("POD_NAME") or socket.gethostname()
        elector = wiring.leader_elector(
            api_client,
            args.leader_election_namespace,
            args.leader_election_id,
            f"{identity}_{uuid.uuid4().hex[:8]}",
            leader.Timing(args.lease_duration, args.renew_deadline, args.retry_period),
        )
    loop = runtime.Runtime(settings, wiring.adapters(settings, api_client), elector)
    if args.metrics_address:
        from infscale.controller import telemetry

        telemetry.serve(args.metrics_address)
    kopf.run(
        registry=handlers.build_registry(loop),
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "operator":
        return run_operator(args)
    if args.command == "demo":
        from infscale.cli import demo

        return demo.run(args)
    if args.command == "bench-live":
        from infscale.cli import bench_live

        return bench_live.run(args)
    if args.command == "whatif":
        from infscale.cli import whatif

        return whatif.run(args)
    if args.command == "emulator":
        from infscale.emulator import server as emulator

        return emulator.run(args)
    parser.print_help(sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
