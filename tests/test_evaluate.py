"""pricecurate evaluate: the course's metrics by hand, the band edges, parsing replies, id checks, the files."""

from __future__ import annotations

import csv
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from handoff_fixtures import row, write_dataset

from pricecurate.cli.main import main
from pricecurate.evaluate.metrics import band_labels, rmsle, score, score_by_category
from pricecurate.evaluate.predictions import EvaluationError, parse_price_text
from pricecurate.evaluate.score import evaluate, summary

PREFIX = "Price is $"


@pytest.mark.parametrize("truth, prediction, band", [
    (100, 139.99, "green"), (100, 140, "orange"), (100, 60, "orange"),       # $40: error 40 is not < 40
    (500, 599.99, "green"), (500, 600, "orange"), (500, 400, "orange"),      # 20%: exactly 20% is not < 20%
    (100, 179.99, "orange"), (100, 180, "red"), (100, 20, "red"),            # $80 (and over 40%)
    (500, 699.99, "orange"), (500, 700, "red"), (500, 300, "red"),           # 40% (and over $80)
    (10, 10, "green"), (10, 49.99, "green"), (10, 50, "orange"), (1000, 1199, "green"),
])
def test_band_edges_are_strict(truth, prediction, band):
    assert band_labels([truth], [prediction]) == [band]


def test_metrics_by_hand():
    truths = [100.0, 50.0, 500.0, 20.0]
    predictions = [130.0, 0.0, 650.0, -5.0]  # errors 30, 50, 150, 25: green, orange (100%, < $80), orange, green
    scored = score(truths, predictions)
    assert scored["count"] == 4
    assert scored["average_error"] == pytest.approx((30 + 50 + 150 + 25) / 4)
    logs = [(math.log1p(100) - math.log1p(130)) ** 2, math.log1p(50) ** 2,
            (math.log1p(500) - math.log1p(650)) ** 2, math.log1p(20) ** 2]  # a negative prediction counts as 0
    assert scored["rmsle"] == pytest.approx(math.sqrt(sum(logs) / 4))
    assert scored["bands"] == {"green": 2, "orange": 2, "red": 0} and scored["hit_rate"] == 0.5
    assert rmsle([], []) == 0.0 and score([], [])["count"] == 0
    per = score_by_category(truths, predictions, ["B", "A", "B", "A"])
    assert list(per) == ["A", "B"]
    assert per["A"]["average_error"] == pytest.approx(37.5) and per["A"]["bands"] == {"green": 1, "orange": 1, "red": 0}
    assert per["B"]["count"] == 2 and per["B"]["hit_rate"] == 0.5


@pytest.mark.parametrize("text, value", [
    ("Price is $1,299.99", 1299.99), ("Price is $ 45", 45.0), ("I'd say 3 items at 12.50 each", 3.0),
    ("Step 1: think. Price is $89.00 (about 90)", 89.0), ("12", 12.0), ("$.99", 0.99), ("Price is $-5", -5.0),
    ("no idea", None), ("Price is $ unknown", None), ("", None), ("1,2,3", 123.0),
])
def test_parse_price_text(text, value):
    assert parse_price_text(text, PREFIX) == value


# The fixture: five test rows in two categories, and the predictions for them.
TEST_ROWS = [("B001", "Automotive", 100.0), ("B002", "Automotive", 50.0), ("B003", "Toys_and_Games", 500.0),
             ("B004", "Toys_and_Games", 20.0), ("B005", "Toys_and_Games", 200.0)]
REPLIES = {"B001": "Price is $130.00", "B002": "I cannot tell", "B003": "Price is $650", "B004": "Price is $-5",
           "B005": "It costs about $1,040.50, Price is $280.00"}  # after the prefix: 280
PREDICTED = [130.0, 0.0, 650.0, -5.0, 280.0]  # B002 unparsable -> 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rows = {}
    for asin, category, price in TEST_ROWS:
        rows.setdefault(category, []).append(row(f"Item {asin}\nA thing.", price, category, asin, "test"))
    train = {"Automotive": [[row("Train item\nA thing.", 10.0, "Automotive", "B100", "train")]]}
    return write_dataset(tmp_path_factory.mktemp("handmade"), {"train": train,
                                                               "test": {c: [r] for c, r in rows.items()}})


def _write(path, rows: list[dict]):
    if path.suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


EXPECTED = score([price for _, _, price in TEST_ROWS], PREDICTED)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_format_gives_the_hand_computed_metrics(dataset, tmp_path, suffix):
    replies = _write(tmp_path / f"replies{suffix}", [{"parent_asin": a, "completion": t} for a, t in REPLIES.items()])
    result = evaluate(str(dataset), str(replies), out=str(tmp_path / "eval")).result
    assert result["metrics"] == EXPECTED
    assert EXPECTED["average_error"] == pytest.approx((30 + 50 + 150 + 25 + 80) / 5)
    assert EXPECTED["bands"] == {"green": 2, "orange": 2, "red": 1}  # B005: $80 and 40% exactly -> red
    assert result["predictions"]["column"] == "completion"
    assert result["predictions"]["unparsable"] == 1 and result["predictions"]["unparsable_examples"] == ["B002"]

    numbers = _write(tmp_path / f"numbers{suffix}",
                     [{"parent_asin": a, "prediction": p} for (a, _, _), p in zip(TEST_ROWS, PREDICTED)])
    by_number = evaluate(str(dataset), str(numbers), out=str(tmp_path / "eval2")).result
    assert by_number["metrics"] == EXPECTED and by_number["predictions"]["unparsable"] == 0


def test_written_files(dataset, tmp_path):
    replies = _write(tmp_path / "replies.csv", [{"parent_asin": a, "completion": t} for a, t in REPLIES.items()])
    evaluation = evaluate(str(dataset), str(replies))
    folder = dataset / "evaluation"  # the default: beside the data
    assert evaluation.out == folder
    assert sorted(p.name for p in folder.iterdir()) == ["evaluation.html", "evaluation.json", "scatter.png"]
    written = json.loads((folder / "evaluation.json").read_text())
    assert set(written) == {"dataset", "split", "predictions", "metrics", "band_rules", "per_category"}
    assert written["split"] == "test" and written["dataset"]["data"].startswith("data-")
    assert list(written["per_category"]) == ["Automotive", "Toys_and_Games"]
    assert written["per_category"]["Automotive"]["average_error"] == pytest.approx(40.0)
    assert (folder / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (folder / "evaluation.html").read_text()
    assert f"{EXPECTED['average_error']:,.2f}" in page and f"{EXPECTED['rmsle']:,.4f}" in page
    assert "40.0%" in page and "Toys_and_Games" in page and "data:image/png;base64," in page
    printed = summary(evaluation)
    assert "hit rate" in printed and f"{EXPECTED['average_error']:,.2f}" in printed


@pytest.mark.parametrize("rows, words", [
    ([("B001", 1), ("B002", 2), ("B003", 3), ("B004", 4)], "1 of 5 test id(s) have no prediction (e.g. B005)"),
    ([(a, 1) for a, _, _ in TEST_ROWS] + [("B999", 1), ("B100", 1)],
     "2 id(s) are not in the test split (e.g. B100, B999)"),
    ([(a, 1) for a, _, _ in TEST_ROWS] + [("B003", 2)], "1 id(s) appear more than once (e.g. B003)"),
])
def test_id_problems_are_one_line(dataset, tmp_path, rows, words):
    predictions = _write(tmp_path / "p.csv", [{"parent_asin": a, "price": p} for a, p in rows])
    with pytest.raises(EvaluationError) as refused:
        evaluate(str(dataset), str(predictions), out=str(tmp_path / "eval"))
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "eval").exists()


def test_cli(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "examples:\n  pricecurate evaluate out/course predictions.csv" in capsys.readouterr().out

    replies = _write(tmp_path / "r.jsonl", [{"parent_asin": a, "completion": t} for a, t in REPLIES.items()])
    assert main(["evaluate", str(dataset), str(replies), "--out", str(tmp_path / "eval")]) == 0
    assert "RMSLE" in capsys.readouterr().out
    (tmp_path / "no-id.csv").write_text("asin,prediction\nB001,3\n")
    (tmp_path / "bad.jsonl").write_text('{"parent_asin": "B001", "price": 3}\nnot json\n')
    for args, words in [
        ([str(tmp_path / "no-id.csv")], "has no parent_asin column"),
        ([str(tmp_path / "bad.jsonl")], "line 2 is not JSON"),
        ([str(tmp_path / "p.txt")], "unknown extension"),
        ([str(replies), "--split", "validation"], "has no validation split"),
    ]:
        assert main(["evaluate", str(dataset), *args, "--out", str(tmp_path / "eval")]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and words in error, error
