"""A local run listens on loopback only, by the job's own defaults: driver RPC, block manager, UI, Python workers."""

from __future__ import annotations

import os

import psutil
from helpers import LOOPBACK, SocketSampler

from pricecurate.config import load_config
from pricecurate.pipeline.job import run_job
from pricecurate.sample import write_sample

# As this process was started: read at collection, before any test starts a session (which sets its own default).
LAUNCHED_WITH = {name: os.environ.get(name) for name in ("SPARK_LOCAL_IP", "SPARK_CONF_DIR")}


def test_a_local_run_listens_on_loopback_only(spark, tmp_path):
    # Neither the test nor its environment chose the address: the job's defaults must.
    assert LAUNCHED_WITH == {"SPARK_LOCAL_IP": None, "SPARK_CONF_DIR": None}, (
        f"unset {LAUNCHED_WITH} to test the job's own binding")
    source = tmp_path / "in"
    write_sample(source, records_per_category=40, categories=["Automotive"])
    config = load_config("conf/course.yaml", ["categories=all", "split.train=10", "split.test=3"])
    sampler = SocketSampler([psutil.Process()])  # this process, the JVM it started and that JVM's Python workers
    sampler.start()
    try:
        run_job(spark, config, str(source), str(tmp_path / "out"))
    finally:
        seen = sampler.stop()
    ui_port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
    assert ("driver jvm", ui_port) in {(who, port) for who, _, port in seen}, seen  # the sampler sees the JVM's
    assert "python worker" in {who for who, _, _ in seen}, seen  # ... and the Python workers'
    assert {ip for _, ip, _ in seen} <= LOOPBACK, sorted(seen)
