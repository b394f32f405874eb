"""The job on a real Spark standalone cluster gives the same dataset as in local mode."""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from helpers import LOOPBACK, SocketSampler, data_dir, listening_sockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "standalone.sh")
MASTER = "spark://127.0.0.1:7077"
CATEGORIES = ["Automotive", "Electronics", "Toys_and_Games"]
COLUMNS = ("text", "price", "category", "parent_asin", "title", "token_count")
JOB_TIMEOUT = 360


def _env(tmp_path) -> dict[str, str]:
    import pyspark

    env = {key: value for key, value in os.environ.items()
           # The script's defaults (a random secret) and its client settings decide, not this environment.
           if key not in ("SPARK_AUTH_SECRET", "SPARK_LOCAL_IP", "SPARK_CONF_DIR")}
    env.update(
        STANDALONE_DIR=str(tmp_path / "standalone"),
        WORKER_CORES="2",
        WORKER_MEMORY="2g",
        PYTHON=sys.executable,
        PYSPARK_PYTHON=sys.executable,
        SPARK_HOME=os.path.dirname(pyspark.__file__),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    return env


def _client_env(env: dict[str, str]) -> dict[str, str]:
    """The environment a client gets from `eval "$(scripts/standalone.sh env)"`, as the README says."""
    printed = _run([SCRIPT, "env"], env, "standalone.sh env", timeout=30).stdout
    exports = [shlex.split(line)[1] for line in printed.splitlines() if line.startswith("export ")]
    assert exports, printed
    return {**env, **dict(assignment.split("=", 1) for assignment in exports)}


def _daemons(state_dir) -> list[psutil.Process]:
    return [psutil.Process(int(path.read_text())) for path in sorted(state_dir.glob("*.pid"))]


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


def _master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        return json.load(response)


def _rows(output: str, split: str) -> list[tuple]:
    import pyarrow.dataset as ds

    files = sorted(glob.glob(os.path.join(data_dir(output), split, "*", "*.parquet")))
    assert files, f"no Parquet files under {output}/{split}"
    table = ds.dataset(files, format="parquet", partitioning=None).to_table(columns=list(COLUMNS))
    return sorted(zip(*(table.column(name).to_pylist() for name in COLUMNS)))


def _manifest(output: str) -> dict:
    with open(os.path.join(output, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.cluster
def test_authenticated_standalone_cluster_matches_local_mode_and_refuses_strangers(tmp_path, spark):
    """spark-submit to a standalone cluster as the script starts it (a random secret) and as its `env` command
    sets up the client: the master turns away a client without the secret, every process of the run listens on
    loopback only, the job gives the local run's dataset row for row, and the secret is shown nowhere."""
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH; a Spark standalone cluster needs a JVM")
    from pricecurate.config import load_config
    from pricecurate.pipeline.job import run_job
    from pricecurate.sample import write_sample

    # Ports of its own, so a cluster another test left behind cannot answer in its place.
    master_port, master_ui, worker_ui = _free_ports(3)
    env = {**_env(tmp_path), "MASTER_PORT": str(master_port), "MASTER_WEBUI_PORT": str(master_ui),
           "WORKER_WEBUI_PORT": str(worker_ui)}
    master = f"spark://127.0.0.1:{master_port}"
    state = tmp_path / "standalone"
    data = tmp_path / "input"
    write_sample(data, records_per_category=80, categories=CATEGORIES, gzip_categories=["Electronics"])
    out_cluster = str(tmp_path / "out-cluster")
    # slot_cap 2: balancing cuts over-full price slots, so its draw is compared too, not only a keep-all.
    overrides = ["split.train=40", "split.test=15", "balance.slot_cap=2"]
    job_args = ["--config", "conf/course.yaml", "--input", str(data), "--categories", "all"]
    for item in overrides:
        job_args += ["--set", item]
    spark_submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    try:
        started = _run([SCRIPT, "start"], env, "standalone.sh start (authentication by default)", timeout=120)
        for path, mode in ((state / "auth.properties", 0o600), (state / "client", 0o700),
                           (state / "client" / "spark-defaults.conf", 0o600)):
            assert os.stat(path).st_mode & 0o777 == mode, path
        secret = (state / "auth.properties").read_text().split("spark.authenticate.secret=")[1].strip()
        assert len(secret) == 64 and secret not in started.stdout + started.stderr
        daemons = _daemons(state)
        sockets = set().union(*(listening_sockets(daemon) for daemon in daemons))
        assert len(daemons) == 2 and sockets, (daemons, sockets)  # master and worker, each listening
        assert {ip for _, ip, _ in sockets} <= LOOPBACK, sorted(sockets)
        # Without auth the same request reaches the RPC dispatcher and fails there (RequestMessage,
        # EOFException); with auth the SASL gate answers first. Milliseconds, where a real client
        # without the secret would retry registration for a minute.
        error = _unauthenticated_rpc(master_port)
        assert "SASL" in error and "RequestMessage" not in error, error[:2000]
        # The client: no master, secret, address or Python given here; all come from the script's client settings.
        sampler = SocketSampler([psutil.Process(), *daemons])  # the driver's tree, the executors' under the worker
        sampler.start()
        try:
            submit = [spark_submit, "--conf", "spark.executor.memory=1g", "jobs/curate.py", *job_args, "--output",
                      out_cluster]
            run = _run(submit, _client_env(env), "spark-submit to the authenticated standalone cluster")
        finally:
            seen = sampler.stop()
        roles = {who for who, _, _ in seen}
        assert {"driver jvm", "executor jvm", "python worker"} <= roles, sorted(seen)
        assert {ip for _, ip, _ in seen} <= LOOPBACK, sorted(seen)
        # The driver unregisters when it stops; give the master a moment to file the app as completed.
        deadline = time.monotonic() + 20
        master_state = _master_state(master_ui)
        while not master_state.get("completedapps") and time.monotonic() < deadline:
            time.sleep(1)
            master_state = _master_state(master_ui)
        completed = master_state.get("completedapps") or []
        assert completed, f"the master lists no completed application: {json.dumps(master_state)[:2000]}"
        assert any(app.get("name") == "pricecurate" for app in completed), completed
    finally:
        subprocess.run([SCRIPT, "stop"], cwd=ROOT, env=env, timeout=120)
    assert not (state / "auth.properties").exists() and not (state / "client").exists()  # gone with the cluster

    # The same job in this process, local mode.
    out_local = str(tmp_path / "out-local")
    run_job(spark, load_config("conf/course.yaml", ["categories=all", *overrides]), str(data), out_local)

    cluster, local = _manifest(out_cluster), _manifest(out_local)
    assert cluster["spark"]["master"] == master
    assert cluster["accounting"] == local["accounting"]
    assert cluster["splits"] == local["splits"]
    assert cluster["accounting"]["lines"] == 80 * len(CATEGORIES)
    assert cluster["accounting"]["kept"] > cluster["balanced"] == local["balanced"]  # the cut dropped items
    for split in ("items", "train", "test"):
        cluster_rows, local_rows = _rows(out_cluster, split), _rows(out_local, split)
        assert split == "items" or len(cluster_rows) == cluster["splits"]["sizes"][split]
        assert cluster_rows == local_rows, f"{split} rows differ between the cluster and local mode"
    with open(os.path.join(out_cluster, "manifest.json"), encoding="utf-8") as handle:
        assert secret not in handle.read()
    assert secret not in run.stdout and secret not in run.stderr


@pytest.mark.cluster
@pytest.mark.slow
def test_losing_a_worker_mid_run_changes_nothing(tmp_path, spark):
    """Two one-core workers; one is killed (with its executor) during the recipe stage."""
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH; a Spark standalone cluster needs a JVM")
    import signal

    from pricecurate.config import load_config
    from pricecurate.pipeline.job import run_job
    from pricecurate.sample import write_sample

    # Authentication explicitly off (the opt-out must still give a working cluster).
    env = {**_env(tmp_path), "WORKERS": "2", "WORKER_CORES": "1", "WORKER_MEMORY": "1500m", "SPARK_AUTH_SECRET": "none"}
    data = tmp_path / "input"
    write_sample(data, records_per_category=160)  # all 34 categories: long enough to kill mid-stage
    # Exact dedup on, and slots overflow so the cut draws (near is left to the faster local tests).
    overrides = ["split.train=300", "split.test=40", "balance.slot_cap=6", "dedup=title,text"]
    job_args = ["--config", "conf/course.yaml", "--input", str(data), "--categories", "all", "--set", "partitions=8"]
    for item in overrides:
        job_args += ["--set", item]
    out_cluster = str(tmp_path / "out-cluster")
    events = tmp_path / "events"
    events.mkdir()
    (ui_port,) = _free_ports(1)
    spark_submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    killed = None
    try:
        started = _run([SCRIPT, "start"], env, "standalone.sh start (2 workers, no authentication)", timeout=120)
        assert "authentication OFF" in started.stdout and not (tmp_path / "standalone" / "auth.properties").exists()
        job = subprocess.Popen(
            [spark_submit, "--master", MASTER, "--conf", f"spark.pyspark.python={sys.executable}",
             "--conf", "spark.executor.memory=900m", "--conf", f"spark.ui.port={ui_port}",
             "--conf", "spark.eventLog.enabled=true",
             "--conf", f"spark.eventLog.dir={events}", "--conf", "spark.eventLog.compress=false",
             "jobs/curate.py", *job_args, "--output", out_cluster],
            cwd=ROOT, env=_client_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        log = []
        for line in job.stdout:
            log.append(line)
            if killed is None and "items: started" in line:
                with open(os.path.join(env["STANDALONE_DIR"], "worker-2.pid")) as handle:
                    worker = int(handle.read().strip())
                _wait_for_a_running_task(worker, f"http://127.0.0.1:{ui_port}")
                os.killpg(worker, signal.SIGKILL)  # the worker, its executor and Python workers
                killed = worker
        assert job.wait(timeout=JOB_TIMEOUT) == 0, "".join(log[-80:])
        assert killed is not None, "the job never reached the items stage"
    finally:
        subprocess.run([SCRIPT, "stop"], cwd=ROOT, env=env, timeout=120)

    # The undisturbed reference: the same job in this process, local mode.
    reference = str(tmp_path / "out-reference")
    config = load_config("conf/course.yaml", ["categories=all", *overrides])
    run_job(spark, config, str(data), reference)

    # Spark's own record: an executor was removed while tasks ran on it, and those tasks ran again.
    lost = _lost_work(events)
    assert lost["executors_removed"] >= 1 and lost["tasks_lost"] >= 1, lost
    cluster = _manifest(out_cluster)
    assert cluster["accounting"] == _manifest(reference)["accounting"]
    assert cluster["accounting"]["kept"] > cluster["balanced"] == _manifest(reference)["balanced"]
    for split in ("items", "train", "test"):
        assert _rows(out_cluster, split) == _rows(reference, split), split


def _wait_for_a_running_task(worker_pid: int, ui: str, timeout: float = 90) -> None:
    """Return once the executor under ``worker_pid`` has run one task for over a second (Spark's status API):
    killing it then loses that task's work, which must be done again."""

    def get(path: str):
        with urllib.request.urlopen(f"{ui}/api/v1/applications{path}", timeout=5) as response:
            return json.load(response)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor = None
        for child in psutil.Process(worker_pid).children(recursive=True):
            try:
                command = child.cmdline()
            except psutil.Error:  # a process that ended (or is a zombie) as it was listed
                continue
            if "--executor-id" in command:
                executor = command[command.index("--executor-id") + 1]
        try:
            app = get("")[0]["id"]
            for stage in get(f"/{app}/stages?status=active"):
                tasks = get(f"/{app}/stages/{stage['stageId']}/{stage['attemptId']}/taskList?status=running&length=1000")
                if any(t["executorId"] == executor and _running_seconds(t) > 1 for t in tasks):
                    return
        except (OSError, ValueError, IndexError, KeyError):
            pass
        time.sleep(0.1)
    pytest.fail("the second worker's executor never ran a task for over a second")


def _running_seconds(task: dict) -> float:
    """How long a running task has run, from its launch time (e.g. "2026-11-27T09:06:55.123GMT")."""
    import datetime as dt

    launched = dt.datetime.strptime(task["launchTime"].replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    return (dt.datetime.now(dt.timezone.utc) - launched).total_seconds()


def _lost_work(events_dir) -> dict:
    """Executors removed, and tasks that ended because their executor was lost, in the run's event log."""
    from devtools.eventlog import read_events

    counts = {"executors_removed": 0, "tasks_lost": 0}
    for path in events_dir.iterdir():
        for event in read_events(path):
            if event["Event"] == "SparkListenerExecutorRemoved":
                counts["executors_removed"] += 1
            elif (event["Event"] == "SparkListenerTaskEnd"
                  and event.get("Task End Reason", {}).get("Reason") == "ExecutorLostFailure"):
                counts["tasks_lost"] += 1
    return counts


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on; all held open while picking, so the kernel hands out distinct ones."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _unauthenticated_rpc(port: int) -> str:
    """Send the master one bare RPC request, no auth handshake first; return the failure it answers with."""
    # Spark's transport frame: frame length (counting itself), type 3 = RpcRequest, request id, body size, body.
    # The body is a RequestMessage that says "no sender address": the RPC dispatcher reads that far.
    body = b"\x00"
    frame = struct.pack(">qbqi", 8 + 1 + 8 + 4 + len(body), 3, 1, len(body)) + body
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(frame)
        while len(reply) < 8 or len(reply) < struct.unpack(">q", reply[:8])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply[8:9] == b"\x05", f"expected an RpcFailure (type 5) from the master, got {reply[:200]!r}"
    (size,) = struct.unpack(">i", reply[17:21])
    return reply[21:21 + size].decode(errors="replace")
