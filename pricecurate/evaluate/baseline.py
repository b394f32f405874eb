"""Baselines shipped with every dataset: what a trivial model and two simple ones score on its test split.

Each is trained with Spark MLlib on train and scored on test with the course's
metrics (``metrics.score``), so a fine-tuned model has numbers to beat on this
very split. The features are a classic text regression's: the item's text up to
its price prefix (the test prompt, so the price cannot leak in), its lowercased
words hashed into ``FEATURES`` term counts and weighted by IDF fitted on train.

- ``mean``: the mean train price, for every item;
- ``linear``: least squares on the features, in dollars;
- ``ridge_log``: least squares on log(1 + price). Prices are skewed over three
  orders of magnitude, and the course's RMSLE and 20% hit rule judge errors in
  proportion to the price.

Both regressions are fitted on nine tenths of train with each of three L2
penalties; the one with the least error on the seeded tenth left out (average
error in dollars, and RMSLE) is kept.
Train is read in a number of partitions set by its size alone, hashed and
sorted by item, so the sums MLlib's optimizer makes do not depend on the cores
or on how the rows arrived: the same dataset and seed give the same scores.
"""

from __future__ import annotations

import math
import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pricecurate.evaluate import metrics
from pricecurate.rules.recipe import COURSE_2024, Recipe
from pricecurate.spark.columns import cut_test_prompt, item_uniform
from pricecurate.spark.session import CACHE

FEATURES = 1 << 16  # hashed word buckets: as good as 2**18 on the shared records' split, and fitted 3x faster
ROWS_PER_PARTITION = 20_000
MAX_ITER = 15  # L-BFGS iterations per fit: 40 changed no score in the third decimal on the shared records
HELD_OUT = 0.1  # share of train that chooses each regression's penalty
MIN_TRAIN = 50  # fewer train items fit nothing worth a score (and may hold none out)
# Each regression's label, its L2 penalties to choose from, and the held-out error that chooses.
REGRESSIONS = {
    "linear": ("price", (10.0, 100.0, 1000.0), "average_error"),
    "ridge_log": ("log_price", (0.1, 1.0, 10.0), "rmsle"),
}
MODELS = {
    "mean": "the mean train price",
    "linear": "linear regression on hashed TF-IDF of the text, in dollars, L2 penalty chosen on 10% of train held out",
    "ridge_log": "the same on log(1 + price), penalty chosen by RMSLE on 10% of train",
}
_ORDER = ("parent_asin", "category", "text")  # a total order of the rows that matter: identical rows are one


def _fixed_partitions(frame: DataFrame, rows: int) -> DataFrame:
    """``frame`` in partitions whose number and contents follow from the rows alone."""
    partitions = max(1, math.ceil(rows / ROWS_PER_PARTITION))
    return frame.repartition(partitions, "parent_asin").sortWithinPartitions(*_ORDER)


def _prepared(split: DataFrame, rules: Recipe) -> DataFrame:
    """The columns the models read: the text without its price, the price and its log."""
    return split.select(
        *_ORDER, "price",
        cut_test_prompt(rules, "text").alias("baseline_text"),
        F.log1p("price").alias("log_price"),
    )


def _counted():
    """Each text's lowercased words hashed into ``FEATURES`` term counts."""
    # MLlib is imported here, not with the module: it adds 0.4 s to every command that only shows scores.
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import HashingTF, RegexTokenizer

    return PipelineModel(stages=[
        RegexTokenizer(inputCol="baseline_text", outputCol="_words", pattern="\\W+", toLowercase=True),
        HashingTF(inputCol="_words", outputCol="_counts", numFeatures=FEATURES),
    ])


def _idf():
    from pyspark.ml.feature import IDF

    return IDF(inputCol="_counts", outputCol="features")


def _regression(label: str, penalty: float):
    from pyspark.ml.regression import LinearRegression

    return LinearRegression(featuresCol="features", labelCol=label, predictionCol="prediction", maxIter=MAX_ITER,
                            regParam=penalty, elasticNetParam=0.0, solver="l-bfgs")


def _price(label: str):
    """A regression's prediction in dollars (a log-price model's, floored at $0 as RMSLE floors it)."""
    return F.col("prediction") if label == "price" else F.greatest(F.expm1("prediction"), F.lit(0.0))


def _fit_chosen(train: DataFrame, name: str, seed: int) -> tuple:
    """The regression ``name`` fitted on nine tenths of train with each penalty; the one that did best on the
    seeded tenth left out: (model, penalty, held-out error per penalty)."""
    label, penalties, error = REGRESSIONS[name]
    held = item_uniform(seed, "baseline") < HELD_OUT
    fit, check = train.filter(~held), train.filter(held)
    if error == "average_error":
        measure = F.avg(F.abs(F.col("guess") - F.col("price")))
    else:
        measure = F.sqrt(F.avg((F.log1p("price") - F.log1p("guess")) ** 2))
    fitted, scores = {}, {}
    for penalty in penalties:
        fitted[penalty] = _regression(label, penalty).fit(fit)
        guesses = fitted[penalty].transform(check).select("price", _price(label).alias("guess"))
        value = guesses.agg(measure).first()[0]  # computed where the rows are; None when none was held out
        scores[str(penalty)] = None if value is None else round(float(value), 6)
    unknown = math.inf  # no held-out row to judge by: the smallest penalty wins the tie
    penalty = min(penalties, key=lambda value: (unknown if scores[str(value)] is None else scores[str(value)], value))
    return fitted[penalty], penalty, scores


def _scored(test: DataFrame, predictions: DataFrame | None, value) -> dict:
    """The course's metrics of one model on test (test is bounded by the split's configured size)."""
    # Only the numbers reach the driver, in item order (the texts stay where they are).
    if predictions is None:
        rows = test.orderBy(*_ORDER).select("price").collect()
        truths, guesses = [r["price"] for r in rows], [value] * len(rows)
    else:
        rows = predictions.orderBy(*_ORDER).select("price", value.alias("guess")).collect()
        truths, guesses = [r["price"] for r in rows], [r["guess"] for r in rows]
    return {key: (round(v, 6) if isinstance(v, float) else v) for key, v in metrics.score(truths, guesses).items()}


def run_baselines(train: DataFrame, test: DataFrame, seed: int, rules: Recipe = COURSE_2024) -> dict:
    """Fit every baseline on ``train`` and score it on ``test`` (both with the split columns ``text`` and
    ``price``, test's text cut at the price prefix or not); the manifest's ``baselines`` section."""
    started = time.monotonic()
    rows = {"train": train.count(), "test": test.count()}
    section = {"train_items": rows["train"], "test_items": rows["test"], "seed": seed, "features": FEATURES,
               "models": {}}
    if rows["train"] < MIN_TRAIN or not rows["test"]:
        return section | {"skipped": f"{rows['train']} train items, fewer than {MIN_TRAIN}" if rows["train"] < MIN_TRAIN
                          else "no test items"}
    prepared = _fixed_partitions(_prepared(train, rules), rows["train"])
    counted = _counted()
    # Words are split and hashed once: IDF is fitted on the cached counts, which then become the features.
    train_counts = counted.transform(prepared).persist(CACHE)
    weighting = _idf().fit(train_counts)
    train_features = weighting.transform(train_counts).persist(CACHE)
    test_features = weighting.transform(counted.transform(_prepared(test, rules))).persist(CACHE)
    try:
        mean_price = float(train_features.agg(F.avg("price")).first()[0])
        train_counts.unpersist()  # the features are cached now
        section["models"]["mean"] = {**_scored(test_features, None, mean_price), "predicts": round(mean_price, 6)}
        for name, (label, _, error) in REGRESSIONS.items():
            model, penalty, held_out = _fit_chosen(train_features, name, seed)
            section["models"][name] = {**_scored(test_features, model.transform(test_features), _price(label)),
                                       "penalty": penalty, "chosen_by": error, "held_out": held_out}
    finally:
        for frame in (train_counts, train_features, test_features):
            frame.unpersist()
    section["seconds"] = round(time.monotonic() - started, 2)
    return section


def read_split(spark, data_folder: str, split: str) -> DataFrame:
    """A published split as one DataFrame (its files hold ``category``: no partition column is inferred)."""
    return spark.read.option("recursiveFileLookup", "true").parquet(f"{data_folder}/{split}")


COLUMNS = ("model", "average error", "RMSLE", "hit rate", "what it is")


def cells(section: dict) -> list[tuple[str, ...]]:
    """One row of ``COLUMNS`` per model, as text (the card and the report escape it their way)."""
    return [(name, f"${scores['average_error']:,.2f}", f"{scores['rmsle']:.3f}", f"{scores['hit_rate']:.1%}",
             MODELS[name]) for name, scores in section["models"].items()]


def baseline_lines(section: dict | None) -> list[str]:
    """The baselines' scores for the run's summary."""
    if not section:
        return []
    if section.get("skipped"):
        return [f"  baselines: not fitted ({section['skipped']})"]
    lines = [f"  baselines on {section['test_items']:,} test items (trained on {section['train_items']:,}):"]
    lines += [f"    {name:<10} average error {error:>10}  RMSLE {rmsle}  hits {hits}"
              for name, error, rmsle, hits, _ in cells(section)]
    return lines
