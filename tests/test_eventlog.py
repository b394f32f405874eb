"""Event-log parsing and the scale-out replay, on hand-written log lines (no Spark)."""

from __future__ import annotations

import json

import pytest

from devtools.eventlog import (
    AS_MEASURED,
    BY_BYTES,
    EventLogError,
    Stage,
    event_log_files,
    find_event_log,
    input_shuffle,
    project,
    read_stages,
    replay,
    scaled_seconds,
    spread_by_bytes,
)

# ---------------------------------------------------------------- event lines, with Spark's field names


def rdd(rdd_id, name="MapPartitionsRDD", parents=(), persisted=False):
    level = {"Use Disk": persisted, "Use Memory": persisted, "Use Off Heap": False, "Deserialized": False,
             "Replication": 1}
    return {"RDD ID": rdd_id, "Name": name, "Parent IDs": list(parents), "Storage Level": level,
            "Number of Partitions": 2, "Number of Cached Partitions": 0}


def stage_info(stage_id, tasks, rdds, submitted):
    return {"Stage ID": stage_id, "Stage Attempt ID": 0, "Stage Name": f"collect at job.py:{stage_id}",
            "Number of Tasks": tasks, "RDD Info": rdds, "Parent IDs": [], "Submission Time": submitted}


def job_start(job_id, stage_ids, group=None):
    properties = {"spark.job.description": "x"} | ({"spark.jobGroup.id": group} if group else {})
    return {"Event": "SparkListenerJobStart", "Job ID": job_id, "Submission Time": 0, "Stage IDs": stage_ids,
            "Stage Infos": [], "Properties": properties}


def stage_submitted(info):
    return {"Event": "SparkListenerStageSubmitted", "Stage Info": info, "Properties": {}}


def stage_completed(info):
    return {"Event": "SparkListenerStageCompleted", "Stage Info": info | {"Completion Time": 0}}


def task_end(stage_id, index, launch_ms, finish_ms, attempt=0, reason="Success", read=0, written=0, fetched=0):
    failed = reason not in ("Success", "TaskKilled")
    return {
        "Event": "SparkListenerTaskEnd", "Stage ID": stage_id, "Stage Attempt ID": 0, "Task Type": "ShuffleMapTask",
        "Task End Reason": {"Reason": reason},
        "Task Info": {"Task ID": 100 * stage_id + index, "Index": index, "Attempt": attempt, "Partition ID": index,
                      "Launch Time": launch_ms, "Finish Time": finish_ms, "Failed": failed,
                      "Killed": reason == "TaskKilled", "Speculative": attempt > 0},
        "Task Metrics": {
            "Executor Run Time": finish_ms - launch_ms,
            "Input Metrics": {"Bytes Read": read, "Records Read": 0},
            "Shuffle Write Metrics": {"Shuffle Bytes Written": written, "Shuffle Write Time": 0,
                                      "Shuffle Records Written": 0},
            "Shuffle Read Metrics": {"Remote Bytes Read": fetched // 2, "Local Bytes Read": fetched - fetched // 2,
                                     "Remote Blocks Fetched": 0, "Local Blocks Fetched": 0},
        },
    }


def write_log(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture()
def job_log(tmp_path):
    """A warm-up job (0) and a scale-model job (1, 2): scan + cache, shuffle, then a read of the cache."""
    scan = [rdd(1, "FileScanRDD"), rdd(2, parents=[1]), rdd(3, parents=[2], persisted=True), rdd(4, parents=[3])]
    cached_read = [rdd(1, "FileScanRDD"), rdd(2, parents=[1]), rdd(3, parents=[2], persisted=True),
                   rdd(5, "MapPartitionsRDD", parents=[3])]
    warm = stage_info(0, 1, [rdd(90, "FileScanRDD")], submitted=1)
    first = stage_info(1, 3, scan, submitted=10)
    reduce = stage_info(2, 1, [rdd(6, "ShuffledRowRDD")], submitted=20)
    again = stage_info(3, 2, cached_read, submitted=30)
    events = [
        {"Event": "SparkListenerLogStart", "Spark Version": "4.0.0"},
        job_start(0, [0], group="warm-up"), stage_submitted(warm), task_end(0, 0, 0, 900, read=50),
        stage_completed(warm),
        job_start(1, [1, 2], group="scale-model"), stage_submitted(first),
        task_end(1, 0, 1000, 4000, read=600, written=40),
        task_end(1, 1, 1000, 2000, read=300, written=20),
        task_end(1, 2, 2000, 2500, reason="ExceptionFailure", read=100),  # failed attempt: ignored
        task_end(1, 2, 2600, 3600, attempt=1, read=100, written=10),
        task_end(1, 2, 2600, 9000, attempt=2, reason="TaskKilled"),  # the slower speculative copy
        stage_completed(first),
        stage_submitted(reduce), task_end(2, 0, 4100, 4600, fetched=70), stage_completed(reduce),
        {"Event": "SparkListenerJobEnd", "Job ID": 1, "Job Result": {"Result": "JobSucceeded"}},
        job_start(2, [4, 3], group="scale-model"), stage_submitted(again),
        task_end(3, 1, 5000, 5200, read=30, written=5), task_end(3, 0, 5000, 5400, read=30, written=5),
        stage_completed(again),
    ]
    return write_log(tmp_path / "local-1", events)


# ---------------------------------------------------------------- replay and scaling


def test_replay_hands_each_task_to_the_first_free_slot():
    assert replay([3, 1, 1, 1], 2) == 3
    assert replay([1, 1, 1, 3], 2) == 4  # index order matters: the long task starts last
    assert replay([2, 2, 2], 1) == 6
    assert replay([5, 1], 64) == 5  # more slots than tasks: the longest task
    assert replay([], 8) == 0


def test_replay_needs_a_slot():
    with pytest.raises(ValueError):
        replay([1.0], 0)


def test_a_task_keeps_its_fixed_cost_and_scales_the_rest():
    assert scaled_seconds(1.05, 100, 0.05) == pytest.approx(100.05)
    assert scaled_seconds(0.03, 100, 0.05) == pytest.approx(0.03)
    assert scaled_seconds(2.0, 1, 0.05) == pytest.approx(2.0)


def _stage(stage_id, seconds, reads_files=False, read=0, written=0, task_bytes=()):
    return Stage(stage_id, f"s{stage_id}", len(seconds), tuple(seconds), read, written, 0, reads_files,
                 tuple(task_bytes))


def test_a_stage_time_is_shared_by_the_bytes_each_task_read():
    # Data time (1.0 + 0.2 + 0.2) x 10 = 14 s, shared 1:1:2 by bytes; no fixed cost.
    assert spread_by_bytes([1.0, 0.2, 0.2], [100, 100, 200], ratio=10, fixed_seconds=0) == pytest.approx(
        [3.5, 3.5, 7.0])
    # The fixed cost stays with each task and is not scaled.
    assert spread_by_bytes([1.05, 0.25], [1, 1], ratio=10, fixed_seconds=0.05) == pytest.approx([6.05, 6.05])
    # A stage that reads nothing works on a table made on the driver, as big in the model as in full: as measured.
    assert spread_by_bytes([0.4, 0.1], [0, 0], ratio=10, fixed_seconds=0.05) == pytest.approx([0.4, 0.1])


def test_by_bytes_a_slow_first_task_is_noise_and_a_big_task_is_not():
    warm_up = _stage(0, [0.5, 0.1, 0.1, 0.1], task_bytes=[100, 100, 100, 100])  # same bytes, one slow start
    skewed = _stage(1, [0.1, 0.1, 0.1, 0.4], task_bytes=[100, 100, 100, 400])  # one task reads 4x
    measured = project([warm_up, skewed], ratio=100, cores=4, fixed_seconds=0, spread=AS_MEASURED)
    shared = project([warm_up, skewed], ratio=100, cores=4, fixed_seconds=0, spread=BY_BYTES)
    assert [s.longest_s for s in measured.stages] == pytest.approx([50, 40])
    assert [s.longest_s for s in shared.stages] == pytest.approx([20, 40])
    assert shared.ideal_s == pytest.approx(measured.ideal_s)  # the same work, shared differently
    assert shared.efficiency > measured.efficiency
    assert shared.to_dict()["spread"] == BY_BYTES


def test_an_unknown_spread_is_refused():
    with pytest.raises(ValueError, match="spread"):
        project([_stage(0, [1.0])], ratio=1, cores=1, fixed_seconds=0, spread="evenly")
    with pytest.raises(ValueError, match="bytes per task"):  # never a silent fallback to the measured times
        project([_stage(0, [1.0])], ratio=1, cores=1, fixed_seconds=0, spread=BY_BYTES)


def test_projection_in_numbers():
    stages = [_stage(0, [3, 1, 1, 1]), _stage(1, [2, 2])]
    result = project(stages, ratio=1, cores=2, fixed_seconds=0)
    assert [s.wall_s for s in result.stages] == [3, 2]
    assert [s.longest_s for s in result.stages] == [3, 2]
    assert result.wall_s == 5
    assert result.ideal_s == 5  # 10 task seconds over 2 cores
    assert result.efficiency == 1.0

    scaled = project(stages, ratio=10, cores=4, fixed_seconds=0.5)
    # Stage 0: 25.5, 5.5, 5.5, 5.5 on 4 cores -> 25.5; stage 1: 15.5, 15.5 -> 15.5.
    assert scaled.stages[0].wall_s == pytest.approx(25.5)
    assert scaled.wall_s == pytest.approx(41.0)
    assert scaled.ideal_s == pytest.approx((25.5 + 3 * 5.5 + 2 * 15.5) / 4)  # 18.25
    assert scaled.efficiency == pytest.approx(18.25 / 41.0)
    assert scaled.to_dict()["efficiency"] == 0.445


def test_input_shuffle_share_counts_only_file_scans():
    stages = [_stage(0, [1], reads_files=True, read=1000, written=80),
              _stage(1, [1], reads_files=True, read=1000, written=20),
              _stage(2, [1], read=500, written=400)]  # a cache read: not an input scan
    summary = input_shuffle(stages, input_bytes=1000)
    assert (summary.scanned_bytes, summary.shuffle_write_bytes, summary.scan_stages) == (2000, 100, 2)
    assert summary.share == pytest.approx(0.1)
    assert summary.reads_of_input == pytest.approx(2.0)
    assert input_shuffle(stages).input_bytes == 2000


# ---------------------------------------------------------------- reading a log


def test_stages_of_one_job_group(job_log):
    stages = read_stages(job_log, job_group="scale-model")
    assert [s.stage_id for s in stages] == [1, 2, 3]  # stage 4 was listed but skipped: no tasks
    first, reduce, again = stages
    assert first.task_seconds == (3.0, 1.0, 1.0)  # failed and killed attempts left out
    assert first.task_bytes == (600, 300, 100)  # input and shuffle read, in the same order
    assert first.tasks == 3
    assert (first.input_bytes, first.shuffle_write_bytes, first.shuffle_read_bytes) == (1000, 70, 0)
    assert reduce.shuffle_read_bytes == 70
    assert again.task_seconds == (0.4, 0.2)  # index order, whatever order the ends were logged in
    assert reduce.task_bytes == (70,)


def test_a_cached_scan_is_not_an_input_read(job_log):
    first, reduce, again = read_stages(job_log, job_group="scale-model")
    assert first.reads_files and not reduce.reads_files
    assert not again.reads_files  # its lineage holds the FileScanRDD, behind the RDD stage 1 cached


def test_selection_by_first_job_and_no_selection(job_log):
    assert [s.stage_id for s in read_stages(job_log, first_job=2)] == [3]
    assert [s.stage_id for s in read_stages(job_log)] == [0, 1, 2, 3]
    assert read_stages(job_log, job_group="other") == []


def test_projection_of_the_log(job_log):
    stages = read_stages(job_log, job_group="scale-model")
    result = project(stages, ratio=100, cores=2, fixed_seconds=0.05)
    # Stage 1: 295.05, 95.05, 95.05 on 2 cores -> 295.05; stage 2: 45.05; stage 3: 35.05, 15.05 -> 35.05.
    assert result.wall_s == pytest.approx(375.15)
    assert result.ideal_s == pytest.approx((295.05 + 2 * 95.05 + 45.05 + 35.05 + 15.05) / 2)
    assert result.efficiency == pytest.approx(290.15 / 375.15)
    assert input_shuffle(stages, input_bytes=1000).share == pytest.approx(0.07)


def test_a_cut_off_last_line_is_skipped(job_log):
    with open(job_log, "a") as handle:
        handle.write('{"Event": "SparkListenerTaskEnd", "Stage')
    assert len(read_stages(job_log, job_group="scale-model")) == 3


def test_a_broken_line_elsewhere_is_an_error(tmp_path):
    log = tmp_path / "app"
    log.write_text('not json\n{"Event": "SparkListenerLogStart"}\n')
    with pytest.raises(EventLogError, match="line 1"):
        read_stages(log)


def test_rolled_log_directories_are_read_in_order(tmp_path, job_log):
    lines = job_log.read_text().splitlines(keepends=True)
    rolled = tmp_path / "eventlog_v2_local-2"
    rolled.mkdir()
    # events_10 sorts before events_2 as text: the index, not the name, orders the parts.
    for number, part in ((1, lines[:7]), (2, lines[7:14]), (10, lines[14:])):
        (rolled / f"events_{number}_local-2").write_text("".join(part))
    (rolled / "appstatus_local-2").write_text("")
    assert [p.name for p in event_log_files(rolled)] == ["events_1_local-2", "events_2_local-2", "events_10_local-2"]
    assert read_stages(rolled, job_group="scale-model") == read_stages(job_log, job_group="scale-model")
    assert find_event_log(tmp_path, "local-2") == rolled
    assert find_event_log(tmp_path, "local-1") == job_log


def test_compressed_logs_are_refused_with_the_fix(tmp_path):
    log = tmp_path / "local-3.zstd"
    log.write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(EventLogError, match="spark.eventLog.compress=false"):
        read_stages(log)
    with pytest.raises(EventLogError, match="no event log"):
        find_event_log(tmp_path, "local-4")
