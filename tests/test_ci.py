"""CI cannot go green without the reference data: tests that need ../shared fail there instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def _golden_tests(tmp_path, ci: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRICECURATE_SHARED": str(tmp_path / "absent"), "CI": ci}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_golden.py",
                           "-k", "match_golden"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_without_shared_golden_tests_fail_in_ci_and_skip_elsewhere(tmp_path):
    in_ci = _golden_tests(tmp_path, "true")
    assert in_ci.returncode == 1 and "6 errors" in in_ci.stdout, in_ci.stdout[-2000:]  # 3 sets x 2 engines
    assert "CI must have it" in in_ci.stdout
    elsewhere = _golden_tests(tmp_path, "")
    assert elsewhere.returncode == 0 and "6 skipped" in elsewhere.stdout, elsewhere.stdout[-2000:]
