"""One run's context: what every stage of the job reads, passed as one object instead of a dozen arguments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from pricecurate.config import Config
from pricecurate.output.write import Output
from pricecurate.pipeline.progress import Progress
from pricecurate.pipeline.read import InputPlan, ReadLayout
from pricecurate.tokenizer.spec import TokenizerSpec


@dataclass
class Tokenizer:
    """The run's tokenizer as the workers get it: its JSON broadcast once, the engine chosen on the driver."""

    spec: TokenizerSpec
    broadcast: object  # pyspark Broadcast of ``spec.json``
    engine: str
    builds: object  # accumulator: tokenizers built by the workers (one per Python worker)


@dataclass
class Counters:
    """What the rules count as they run, read by the live status line and the manifest."""

    records: object  # accumulator: lines through the rules
    kept: object  # accumulator: lines kept
    damaged: dict[str, str] = field(default_factory=dict)  # file name -> why it could not be read to the end


@dataclass
class Run:
    """A run of the job on an output it holds."""

    spark: SparkSession
    config: Config
    plan: InputPlan
    layout: ReadLayout
    output: Output
    progress: Progress
    started: dt.datetime
    tokenizer: Tokenizer
    counters: Counters

    @property
    def fs(self):
        return self.output.fs

    @property
    def cores(self) -> int:
        return self.spark.sparkContext.defaultParallelism
