"""The job on a real Spark standalone cluster gives the same dataset as in local mode."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "standalone.sh")
MASTER = "spark://127.0.0.1:7077"
MASTER_JSON = "http://127.0.0.1:8080/json/"
CATEGORIES = ["Automotive", "Electronics", "Toys_and_Games"]
COLUMNS = ("text", "price", "category", "parent_asin", "title", "token_count")
JOB_TIMEOUT = 360


def _env(tmp_path) -> dict[str, str]:
    import pyspark

    env = dict(os.environ)
    env.pop("SPARK_AUTH_SECRET", None)  # the test cluster runs without authentication
    env.update(
        STANDALONE_DIR=str(tmp_path / "standalone"),
        WORKER_CORES="2",
        WORKER_MEMORY="2g",
        PYTHON=sys.executable,
        PYSPARK_PYTHON=sys.executable,
        SPARK_HOME=os.path.dirname(pyspark.__file__),
        SPARK_LOCAL_IP="127.0.0.1",
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    return env


def _run(cmd: list[str], env: dict[str, str], what: str, timeout: int = JOB_TIMEOUT) -> subprocess.CompletedProcess:
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"{what} timed out after {timeout}s\n--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}")
    print(f"{what}: exit {proc.returncode} in {time.monotonic() - started:.1f}s")
    assert proc.returncode == 0, (
        f"{what} failed with exit code {proc.returncode}\n"
        f"--- stdout (tail) ---\n{proc.stdout[-4000:]}\n--- stderr (tail) ---\n{proc.stderr[-6000:]}"
    )
    return proc


def _master_state() -> dict:
    with urllib.request.urlopen(MASTER_JSON, timeout=5) as response:
        return json.load(response)


def _rows(output: str, split: str) -> list[tuple]:
    import pyarrow.dataset as ds

    files = sorted(glob.glob(os.path.join(output, split, "*", "*.parquet")))
    assert files, f"no Parquet files under {output}/{split}"
    table = ds.dataset(files, format="parquet", partitioning=None).to_table(columns=list(COLUMNS))
    return sorted(zip(*(table.column(name).to_pylist() for name in COLUMNS)))


def _manifest(output: str) -> dict:
    with open(os.path.join(output, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.cluster
def test_standalone_cluster_matches_local_mode(tmp_path):
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH; a Spark standalone cluster needs a JVM")
    from pricecurate.sample import write_sample

    env = _env(tmp_path)
    data = tmp_path / "input"
    write_sample(data, records_per_category=80, categories=CATEGORIES, gzip_categories=["Electronics"])
    out_cluster = str(tmp_path / "out-cluster")
    out_local = str(tmp_path / "out-local")
    job_args = ["--config", "conf/course.yaml", "--input", str(data), "--categories", "all",
                "--set", "split.train=40", "--set", "split.test=15"]
    spark_submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")

    try:
        _run([SCRIPT, "start"], env, "standalone.sh start", timeout=120)
        _run(
            [
                spark_submit, "--master", MASTER,
                "--conf", f"spark.pyspark.python={sys.executable}",
                "--conf", "spark.driver.host=127.0.0.1",
                "--conf", "spark.driver.bindAddress=127.0.0.1",
                "--conf", "spark.executor.memory=1g",
                "jobs/curate.py", *job_args, "--output", out_cluster,
            ],
            env,
            "spark-submit to the standalone cluster",
        )
        # The driver unregisters when it stops; give the master a moment to file the app as completed.
        deadline = time.monotonic() + 20
        state = _master_state()
        while not state.get("completedapps") and time.monotonic() < deadline:
            time.sleep(1)
            state = _master_state()
        completed = state.get("completedapps") or []
        assert completed, f"the master lists no completed application: {json.dumps(state)[:2000]}"
        assert any(app.get("name") == "pricecurate" for app in completed), completed
    finally:
        subprocess.run([SCRIPT, "stop"], cwd=ROOT, env=env, timeout=120)

    _run(
        [sys.executable, "-m", "pricecurate.cli", "run", *job_args, "--output", out_local, "--master", "local[2]"],
        env,
        "local[2] run",
    )

    cluster, local = _manifest(out_cluster), _manifest(out_local)
    assert cluster["accounting"] == local["accounting"]
    assert cluster["splits"] == local["splits"]
    assert cluster["accounting"]["lines"] == 80 * len(CATEGORIES)
    assert cluster["accounting"]["kept"] > 0
    for split in ("train", "test"):
        cluster_rows, local_rows = _rows(out_cluster, split), _rows(out_local, split)
        assert len(cluster_rows) == cluster["splits"]["sizes"][split]
        assert cluster_rows == local_rows, f"{split} rows differ between the cluster and local mode"


@pytest.mark.cluster
def test_losing_a_worker_mid_run_changes_nothing(tmp_path, spark):
    """Two one-core workers; one is killed (with its executor) during the recipe stage."""
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH; a Spark standalone cluster needs a JVM")
    import signal

    from pricecurate.config import load_config
    from pricecurate.job import run_job
    from pricecurate.sample import write_sample

    env = {**_env(tmp_path), "WORKERS": "2", "WORKER_CORES": "1", "WORKER_MEMORY": "1500m"}
    data = tmp_path / "input"
    write_sample(data, records_per_category=160)  # all 34 categories: long enough to kill mid-stage
    overrides = ["split.train=300", "split.test=40"]
    job_args = ["--config", "conf/default.yaml", "--input", str(data), "--categories", "all", "--set", "partitions=8"]
    for item in overrides:
        job_args += ["--set", item]
    out_cluster = str(tmp_path / "out-cluster")
    spark_submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    killed = None
    try:
        _run([SCRIPT, "start"], env, "standalone.sh start (2 workers)", timeout=120)
        job = subprocess.Popen(
            [spark_submit, "--master", MASTER, "--conf", f"spark.pyspark.python={sys.executable}",
             "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
             "--conf", "spark.executor.memory=900m", "jobs/curate.py", *job_args, "--output", out_cluster],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        log = []
        for line in job.stdout:
            log.append(line)
            if killed is None and "items: started" in line:
                time.sleep(4)  # let both executors get into the Python work
                with open(os.path.join(env["STANDALONE_DIR"], "worker-2.pid")) as handle:
                    killed = int(handle.read().strip())
                os.killpg(killed, signal.SIGKILL)  # the worker, its executor and Python workers
        assert job.wait(timeout=JOB_TIMEOUT) == 0, "".join(log[-80:])
        assert killed is not None, "the job never reached the items stage"
    finally:
        subprocess.run([SCRIPT, "stop"], cwd=ROOT, env=env, timeout=120)

    # The undisturbed reference: the same job in this process, local mode.
    reference = str(tmp_path / "out-reference")
    config = load_config("conf/default.yaml", ["categories=all", *overrides])
    run_job(spark, config, str(data), reference)

    assert _manifest(out_cluster)["accounting"] == _manifest(reference)["accounting"]
    for split in ("items", "train", "test"):
        assert _rows(out_cluster, split) == _rows(reference, split), split
