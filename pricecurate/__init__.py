"""pricecurate: Amazon Reviews 2023 product metadata -> a balanced price-prediction fine-tuning dataset, on Spark.

The map, in the order data flows (each package imports only those listed after it, checked by
``tests/test_layout.py``):

    cli/        the ``pricecurate`` command: ``parser`` (arguments), ``commands`` (one function per command),
                ``prepare`` (this machine's JVM class archive)
    pipeline/   the job: ``job.run_job`` is the list of stages, each given the run's ``context.Run``:
                ``read`` -> ``arrow_rules`` -> ``items`` -> ``dedup/`` -> ``balance`` -> ``split`` -> ``leakage``,
                then ``output.write``/``publish``;
                ``driver_order`` (balance and split ranked on the driver when the items fit there),
                ``accounting``, ``reuse``, ``estimate`` (``plan``) with ``bench_model`` (a run's seconds),
                ``progress``/``live`` (what a stage is doing)
    report/  evaluate/  export/
                what is made from a published dataset: the HTML report and data card (``report.card``),
                scores and baselines, fine-tuning files
    output/     the output folder: ``layout`` (every name on disk, the manifest reader), ``write``, ``publish``
                (atomic, recoverable), ``lease`` (one writer), ``readback``, ``hub`` (download, push),
                ``source`` (the source dataset: its terms and citation)
    spark/      Spark plumbing that knows no recipe: ``session``, ``fs`` (Hadoop filesystems), ``jvm_archive``,
                ``local_fs`` (local files without a chmod process each), ``daemon`` (the local Python workers'),
                ``noise``, ``columns`` (seeded hashes, the test prompt), ``components``, ``order_stats``
    tokenizer/  ``spec`` (find a tokenizer), ``engine`` (tiktoken where exact, else ``codec``), ``tables``
                (tiktoken's tables, kept per tokenizer)
    config.py   the run's settings (``conf/*.yaml`` + ``--set``)        sample.py  the bundled synthetic input
    rules/      the recipe as pure Python, no Spark: ``recipe`` (one record: scrub, cut to the token budget,
                the prompt), ``lines`` (a batch of raw lines -> outcomes), ``categories``
    errors.py, masking.py, paths.py, units.py   one-line user errors, what is a secret, local paths and the cache
                folder, sizes and durations in words

Where to look first: the cut to 160 tokens is ``rules.lines.build_items`` (the budget: ``rules.recipe.MAX_TOKENS``);
a manifest is read by ``output.layout.read_manifest``; the output's folders are named in ``output.layout``.
"""
