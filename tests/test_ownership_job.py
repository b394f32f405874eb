"""The job on outputs that are not its own, held by another run, or left with small files cut short: every
form of ``pricecurate run`` refuses a user's folder untouched, a second writer stops with one line, and a
manifest cut short never stops the next run."""

from __future__ import annotations

import io
import os

import pytest
from test_ownership import snapshot, users_folder

from pricecurate.cli.main import main
from pricecurate.config import load_config
from pricecurate.errors import OutputError
from pricecurate.output import layout
from pricecurate.output.lease import Lease
from pricecurate.pipeline.job import run_job
from pricecurate.pipeline.progress import Progress
from pricecurate.sample import write_sample
from pricecurate.spark.fs import HadoopFS

SMALL = ["categories=all", "split.train=20", "split.test=5"]


@pytest.fixture(scope="module")
def small_input(tmp_path_factory):
    source = tmp_path_factory.mktemp("ownership") / "in"
    write_sample(source, records_per_category=30, categories=["Automotive", "Toys_and_Games"])
    return source


def test_every_form_of_run_leaves_a_users_folder_byte_for_byte(spark, small_input, tmp_path, capsys):
    out = tmp_path / "theirs"
    users_folder(out)
    before = snapshot(out)
    for target in (str(out), f"file://{out}"):
        for flags in ([], ["--overwrite"]):
            code = main(["run", "--config", "conf/course.yaml", "--input", str(small_input), "--output", target,
                         "--no-report", "--quiet", *flags, *[f"--set={s}" for s in SMALL]])
            error = capsys.readouterr().err.strip()
            assert code == 2 and "is not a pricecurate dataset" in error and "\n" not in error, (target, flags, error)
            assert snapshot(out) == before, (target, flags)
            # The job's own check, which every URI gets (the command's check before Spark starts is a shortcut).
            with pytest.raises(OutputError, match="is not a pricecurate dataset"):
                run_job(spark, load_config("conf/course.yaml", SMALL), str(small_input), target, bool(flags))
            assert snapshot(out) == before, (target, flags)


def test_cut_short_manifests_and_a_held_lease(spark, small_input, tmp_path, capsys):
    config = load_config("conf/course.yaml", SMALL)
    out = tmp_path / "out"
    first = run_job(spark, config, str(small_input), str(out))
    folder = out / first.manifest["data"]
    for path, keep in ((folder / layout.MANIFEST, 0.5), (out / layout.MANIFEST, 0.0)):  # as a kill leaves them
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    # While another run holds the output, a run stops at once with one line naming it, and touches nothing.
    capsys.readouterr()
    other = Lease.acquire(HadoopFS(spark), f"{out}/{layout.LEASE}", "0123456789ab", str(out))
    before = snapshot(out)
    try:
        code = main(["run", "--config", "conf/course.yaml", "--input", str(small_input), "--output", str(out),
                     "--overwrite", "--no-report", "--quiet", *[f"--set={s}" for s in SMALL]])
        error = capsys.readouterr().err.strip()
        assert code == 2 and "is being written by run 0123456789ab" in error and "\n" not in error, error
        assert snapshot(out) == before
    finally:
        other.release()

    said = io.StringIO()
    second = run_job(spark, config, str(small_input), str(out), overwrite=True,
                     progress=Progress(said, interactive=False))
    said = said.getvalue()
    assert f"{first.manifest['data']}/{layout.MANIFEST} is cut short or unreadable" in said, said
    assert f"{layout.MANIFEST} is cut short or unreadable (an interrupted run's): treated as absent" in said, said
    assert sorted(os.listdir(out)) == sorted([layout.CARD, second.manifest["data"], layout.MANIFEST, "report"]
                                             if (out / "report").exists() else
                                             [layout.CARD, second.manifest["data"], layout.MANIFEST])
    assert layout.read_manifest(HadoopFS(spark), f"{out}/{layout.MANIFEST}")["data"] == second.manifest["data"]
