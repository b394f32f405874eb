"""Live progress: the status line's content, how it is shown, and the start-up noise filter."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

from pricecurate.pipeline.live import Snapshot, Totals, remaining_seconds, status_line
from pricecurate.pipeline.progress import Progress
from pricecurate.spark.noise import is_startup_noise

GB = 1_000_000_000


def test_the_line_says_tasks_bytes_records_kept_rate_and_eta():
    snapshot = Snapshot(tasks_done=12, tasks_total=40, bytes_read=GB, records_read=600_000, kept=150_000,
                        active_seconds=20)
    line = status_line("items", snapshot, Totals(bytes=4 * GB), elapsed=30.0)
    assert line == ("items: 12/40 tasks, 1.00 GB of 4.00 GB read (25%), 600,000 records, 150,000 kept, "
                    "20,000 records/s, ETA 1m30s")  # a quarter read in 30 s: 90 s to go


def test_without_input_totals_the_eta_follows_the_running_tasks():
    snapshot = Snapshot(tasks_done=3, tasks_total=4, bytes_read=5_000_000, records_read=None, kept=None,
                        active_seconds=12)
    assert remaining_seconds(snapshot, Totals(), elapsed=100) == 4.0  # 3 tasks in 12 s, 1 to go
    assert status_line("balance", snapshot, Totals(), 100) == "balance: 3/4 tasks, 5.00 MB read, ETA 4s"
    # Once the input is read, later stages' cache reads do not push the share past 100%.
    assert "4.00 GB of 4.00 GB read (100%)" in status_line("items", Snapshot(1, 2, 5 * GB, active_seconds=1),
                                                          Totals(bytes=4 * GB), 10)


def test_with_nothing_known_yet_it_says_how_long_so_far():
    assert status_line("items", Snapshot(0, 34), Totals(bytes=GB), 75) == "items: 0/34 tasks, 1m15s so far"
    assert remaining_seconds(Snapshot(0, 34, bytes_read=0), Totals(bytes=GB), 75) is None


class FakeSource:
    def __init__(self):
        self.calls = self.begun = 0

    def begin(self):
        self.begun += 1

    def snapshot(self):
        self.calls += 1
        return Snapshot(self.calls, 100, bytes_read=self.calls * GB // 10, kept=self.calls * 10, active_seconds=1)


def test_a_pipe_gets_a_stamped_line_per_interval_and_the_log_too(tmp_path):
    stream, log = io.StringIO(), tmp_path / "run.log"
    progress = Progress(stream, str(log), interactive=False, log_every=0.05)
    source = FakeSource()
    progress.watch(source)
    progress.expect(Totals(bytes=GB))
    with progress.stage("items"):
        time.sleep(0.4)
    lines = stream.getvalue().splitlines()
    status = [line for line in lines if "tasks" in line]
    assert lines[0].endswith("items: started") and lines[-1].startswith("[pricecurate") and "done in" in lines[-1]
    assert len(status) >= 3 and all(line.startswith("[pricecurate") and "/100 tasks" in line for line in status)
    assert "ETA" in status[-1] and "kept" in status[-1] and "of 1.00 GB read" in status[-1]
    assert source.begun == 1
    assert log.read_text().splitlines() == lines  # the log holds the same lines
    with progress.stage("balance"):  # totals apply to one stage only
        time.sleep(0.12)
    progress.close()
    assert "read (" not in stream.getvalue().splitlines()[-2]


def test_a_terminal_gets_one_line_rewritten_in_place():
    stream = io.StringIO()
    progress = Progress(stream, interactive=True, log_every=0.05)
    progress.watch(FakeSource())
    with progress.stage("items"):
        time.sleep(0.1)
        progress.say("a message clears the status line first")
    text = stream.getvalue()
    assert "\r\x1b[Kitems: 1/100 tasks" in text  # rewritten, not a new line
    assert "\r\x1b[K[pricecurate" in text  # the message replaced the status line


def test_quiet_keeps_warnings_and_the_log(tmp_path):
    stream, log = io.StringIO(), tmp_path / "run.log"
    progress = Progress(stream, str(log), quiet=True, interactive=False, log_every=0.05)
    progress.watch(FakeSource())
    with progress.stage("items"):
        time.sleep(0.15)
        progress.warn("file x is compressed")
    progress.close()
    assert stream.getvalue().strip().endswith("warning: file x is compressed")
    assert stream.getvalue().count("\n") == 1
    assert "items: started" in log.read_text() and "tasks" in log.read_text()


def test_a_failing_status_source_never_breaks_the_stage():
    class Broken:
        def snapshot(self):
            raise ConnectionError("UI gone")

    progress = Progress(io.StringIO(), interactive=False, log_every=0.02)
    progress.watch(Broken())
    with progress.stage("items"):
        time.sleep(0.1)
    assert "items" in progress.stage_seconds


def test_startup_noise_is_dropped_and_everything_else_passes(tmp_path):
    """A child started inside the filter (as Spark's JVM is) keeps it; this process writes straight again after."""
    script = textwrap.dedent("""
        import subprocess, sys
        from pricecurate.spark.noise import startup_noise_filtered
        with startup_noise_filtered():
            subprocess.run(["sh", "-c", "echo 'WARNING: Using incubator modules: jdk.incubator.vector' >&2; "
                            "echo \\"Using Spark's default log4j profile: x\\" >&2; "
                            "echo '26/11/27 WARN NativeCodeLoader: Unable to load native-hadoop library' >&2; "
                            "echo 'ERROR Executor: a real problem' >&2"])
            print("python inside", file=sys.stderr)
        print("python after", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["ERROR Executor: a real problem", "python inside", "python after"]
    assert is_startup_noise("WARNING: Using incubator modules: jdk.incubator.vector")
    assert not is_startup_noise("WARN TaskSetManager: Lost task 0.0 in stage 1.0")


def test_a_real_run_logs_status_lines_with_an_eta(spark, tmp_path):
    """Enough input (20,400 records) in small read splits (about 80 tasks) that tasks finish all through the items
    stage, even in a warm session, and its ETA can be judged."""
    from pricecurate.config import load_config
    from pricecurate.pipeline.job import run_job
    from pricecurate.sample import write_sample

    write_sample(tmp_path / "in", records_per_category=600)
    config = load_config("conf/course.yaml", ["categories=all", "split.train=100", "split.test=10",
                                              "spark.sql.files.maxPartitionBytes=262144",
                                              "spark.sql.files.openCostInBytes=1024"])
    progress = Progress(io.StringIO(), str(tmp_path / "run.log"), interactive=False, log_every=0.1)
    run_job(spark, config, str(tmp_path / "in"), str(tmp_path / "out"), progress=progress)
    progress.close()
    lines = (tmp_path / "run.log").read_text().splitlines()
    status = [line for line in lines if "] items: " in line and " tasks" in line]
    assert any("ETA" in line and "kept" in line and "records/s" in line for line in status), status


def test_spark_status_reads_a_running_stage_s_bytes_and_records_from_the_status_store(spark, tmp_path):
    """Read through the JVM's status store (no REST call): a snapshot during a read has its tasks, bytes and
    records; once it ended, the stage's whole read is counted; without the store, only tasks are known."""
    import threading

    import pyarrow as pa

    from pricecurate.pipeline.live import SparkStatus

    lines = tmp_path / "lines"
    lines.mkdir()
    for part in range(4):
        (lines / f"part-{part}.txt").write_text("".join(f"line {part} {i}\n" for i in range(1_000)))

    def slow(batches):  # each read task lasts long enough to be seen running
        for batch in batches:
            time.sleep(0.4)
            yield batch

    def count(batches):  # and so does the stage after it, when the read is over
        rows = sum(batch.num_rows for batch in batches)
        time.sleep(0.6)
        yield pa.RecordBatch.from_pydict({"n": pa.array([rows], pa.int64())})

    status, bare = SparkStatus(spark.sparkContext), SparkStatus(spark.sparkContext)
    bare._store = None
    job = threading.Thread(target=lambda: spark.read.text(str(lines)).mapInArrow(slow, "value string")
                           .repartition(1).mapInArrow(count, "n long").collect())
    job.start()
    seen, tasks_only = [], []
    while job.is_alive():
        snapshot, other = status.snapshot(), bare.snapshot()
        if snapshot is not None:
            seen.append(snapshot)
        if other is not None:
            tasks_only.append(other)
        time.sleep(0.05)
    job.join()
    assert seen and max(s.tasks_total for s in seen) >= 1
    read = [s for s in seen if s.records_read]
    assert read, seen
    # Seen running (only a stage seen running is counted), then counted in full once it ended.
    assert max(s.records_read for s in read) == 4_000
    assert max(s.bytes_read for s in read) >= sum(f.stat().st_size for f in lines.iterdir())
    assert tasks_only and all(s.bytes_read is None and s.records_read is None for s in tasks_only)
