"""The source root `operator/` must not shadow the standard library's `operator` module."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_operator_is_the_standard_library() -> None:
    operator = importlib.import_module("operator")
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert operator.add(2, 3) == 5
    assert hasattr(operator, "itemgetter")
    # `operator` is a builtin or lives in the stdlib, never in this repository.
    origin = getattr(operator, "__file__", None)
    assert origin is None or Path(origin).resolve().is_relative_to(stdlib)
    assert not (REPO_ROOT / "operator" / "__init__.py").exists()


def test_infscale_imports_from_the_source_root() -> None:
    infscale = importlib.import_module("infscale")
    assert Path(infscale.__file__ or "").resolve().parent == REPO_ROOT / "operator" / "infscale"
    assert (REPO_ROOT / "operator" / "infscale" / "py.typed").exists()


def test_both_resolve_with_the_repository_root_and_source_root_first_on_the_path() -> None:
    # From the repository root, `operator/` is a directory on sys.path[0]: it must lose to the
    # standard library (it has no __init__.py), while `infscale` comes from the source root.
    code = (
        "import operator, infscale; "
        "assert operator.mul(6, 7) == 42; "
        "assert infscale.__version__; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "operator")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_reports_its_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infscale.cli.main", "--version"],
        cwd=REPO_ROOT / "operator",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("infscale ")


def test_the_operator_loads_without_the_bench_extra() -> None:
    # matplotlib and rich are the optional `bench` extra: `infscale operator` (its parser, the
    # kopf handlers and every adapter) and the emulator must not import them at module load.
    code = (
        "import sys; from infscale.cli import main; main.build_parser(); "
        "import infscale.controller.handlers, infscale.emulator.server; "
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'rich'}); "
        "print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT / "operator",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
