"""Shared fixtures: one local SparkSession and one tokenizer codec for the whole run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PRICECURATE_SHARED", REPO.parent / "shared"))
SHARED_SETS = ("real", "converted", "edge")


def shared_available() -> bool:
    return (SHARED / "golden").is_dir() and (SHARED / "data").is_dir()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_shared() -> None:
    """Skip a test that needs ../shared where it is absent; in CI (CI=true) its absence is a failure, or a CI
    without it would pass with no check of prompts, prices or token counts against the reference."""
    if shared_available():
        return
    if in_ci():
        pytest.fail(f"shared reference data not found at {SHARED}; CI must have it (CI=true)", pytrace=False)
    pytest.skip(f"shared reference data not found at {SHARED}")


def require_kernel(kernel, name: str):
    """An optional C kernel (setup.py), or a skip where it was not built; a CI machine has a C compiler, so there
    a missing kernel is a failure."""
    if kernel is None:
        if in_ci():
            pytest.fail(f"the C kernel {name} was not built (setup.py); CI machines have a C compiler", pytrace=False)
        pytest.skip(f"the C kernel {name} is not built here (no C compiler at install)")
    return kernel


@pytest.fixture
def shared():
    require_shared()
    return SHARED


needs_shared = pytest.mark.usefixtures("shared")


def load_golden(name: str) -> list[dict]:
    with open(SHARED / "golden" / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def spark():
    from pricecurate.spark.session import build_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    # One session runs thousands of queries: the UI keeps only the last few plans, not 1,000 of them.
    session = build_session("local[2]", {"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "2g",
                                         "spark.sql.ui.retainedExecutions": "20", "spark.ui.retainedJobs": "50",
                                         "spark.ui.retainedStages": "50"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def tokenizer_spec():
    from pricecurate.tokenizer.spec import load_spec

    return load_spec()


@pytest.fixture(scope="session", params=["tiktoken", "tokenizers"])
def codec(request, tokenizer_spec):
    """Every rule test runs with both encoding engines: they must agree exactly."""
    from pricecurate.tokenizer.engine import codec_for

    return codec_for(tokenizer_spec.json, tokenizer_spec.sha256, request.param)
