"""The output's lease: one holder at a time, taken over only when stale, waited for with --wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import publish_fakes as fakes
import pytest

from pricecurate.output.lease import Lease, LeaseHeld, LeaseLost


def test_a_live_lease_is_refused_with_its_holder_named(tmp_path):
    fs, uri = fakes.LocalFS(), str(tmp_path / "out" / "_pricecurate.lease")
    held = Lease.acquire(fs, uri, "aaaaaaaaaaaa", "out")
    try:
        with pytest.raises(LeaseHeld, match=r"being written by run aaaaaaaaaaaa \(host .*, pid \d+") as refused:
            Lease.acquire(fs, uri, "bbbbbbbbbbbb", "out")
        assert "\n" not in str(refused.value)
    finally:
        held.release()
    assert not os.path.exists(uri)
    Lease.acquire(fs, uri, "bbbbbbbbbbbb", "out").release()  # free again


def test_a_lease_whose_heartbeat_stopped_is_taken_over_and_said(tmp_path):
    fs, uri = fakes.LocalFS(), str(tmp_path / "_pricecurate.lease")
    old = time.time() - 120
    fs.write_text(uri, json.dumps({"run": "elsewhere", "host": "another-host", "pid": 1, "started": old,
                                   "heartbeat": old}))
    with pytest.raises(LeaseHeld):  # younger than the timeout: still held
        Lease.acquire(fs, uri, "mine", "out", timeout=600)
    said = []
    lease = Lease.acquire(fs, uri, "mine", "out", say=said.append, timeout=60)
    assert said and "took over the lease on out from run elsewhere" in said[0] and "no heartbeat for" in said[0]
    lease.check()
    lease.release()


def test_a_killed_runs_lease_on_this_host_is_taken_over_at_once(tmp_path):
    fs, uri = fakes.LocalFS(), str(tmp_path / "_pricecurate.lease")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    fs.write_text(uri, json.dumps({"run": "killed", "host": os.uname().nodename, "pid": holder.pid,
                                   "started": time.time(), "heartbeat": time.time()}))
    with pytest.raises(LeaseHeld):
        Lease.acquire(fs, uri, "mine", "out")
    holder.kill()
    holder.wait()
    said = []
    Lease.acquire(fs, uri, "mine", "out", say=said.append).release()
    assert f"its process {holder.pid} on this host is gone" in said[0]


def test_the_heartbeat_keeps_a_lease_fresh_and_notices_a_takeover(tmp_path):
    fs, uri = fakes.LocalFS(), str(tmp_path / "_pricecurate.lease")
    lease = Lease.acquire(fs, uri, "mine", "out", timeout=5)  # a heartbeat every 0.5 s
    first = json.loads(fs.read_text(uri))["heartbeat"]
    time.sleep(1.5)
    assert json.loads(fs.read_text(uri))["heartbeat"] > first
    fs.write_text(uri, json.dumps({"run": "thief", "host": "h", "pid": 1, "started": 0, "heartbeat": time.time()}))
    time.sleep(1.0)
    with pytest.raises(LeaseLost, match="taken over by run thief"):
        lease.check()
    lease.release()
    assert json.loads(fs.read_text(uri))["run"] == "thief"  # not ours to delete


def test_wait_waits_for_the_holder_to_finish(tmp_path, monkeypatch):
    from pricecurate.output import lease as lease_module

    monkeypatch.setattr(lease_module, "WAIT_POLL", 0.1)
    fs, uri = fakes.LocalFS(), str(tmp_path / "_pricecurate.lease")
    held = Lease.acquire(fs, uri, "first", "out")
    threading.Timer(0.5, held.release).start()
    said = []
    started = time.monotonic()
    Lease.acquire(fs, uri, "second", "out", wait=True, say=said.append).release()
    assert time.monotonic() - started >= 0.4 and said and said[0].startswith("waiting for run first")
