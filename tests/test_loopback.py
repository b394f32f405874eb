"""A local run listens on loopback only: driver RPC, block manager, web UI, Python workers."""

from __future__ import annotations

import threading

import psutil

from helpers import LOOPBACK, listening_sockets
from pricecurate.config import load_config
from pricecurate.job import run_job
from pricecurate.sample import write_sample

class Sampler(threading.Thread):
    """Lists the sockets every 0.2 s until stopped, so short-lived listeners are seen too."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen: set = set()
        self.done = threading.Event()

    def run(self):
        me = psutil.Process()
        while not self.done.is_set():
            self.seen |= listening_sockets(me)
            self.done.wait(0.2)

    def stop(self) -> set:
        self.done.set()
        self.join()
        self.seen |= listening_sockets(psutil.Process())
        return self.seen


def test_a_local_run_listens_on_loopback_only(spark, tmp_path):
    source = tmp_path / "in"
    write_sample(source, records_per_category=40, categories=["Automotive"])
    config = load_config("conf/course.yaml", ["categories=all", "split.train=10", "split.test=3"])
    sampler = Sampler()
    sampler.start()
    try:
        run_job(spark, config, str(source), str(tmp_path / "out"))
    finally:
        seen = sampler.stop()
    ui_port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
    assert any(port == ui_port for _, _, port in seen), seen  # the sampler does see the job's sockets
    assert {ip for _, ip, _ in seen} <= LOOPBACK, sorted(seen)
