"""The throughput benchmark behind scripts/bench.py: the course's per-record loop vs. the Spark job vs. the tokenizer
alone. What it measures, (a) to (e), is that script's docstring (its --help prints it); the pieces live here.

The modules, each importing only from those listed above it (no module here imports the script):
  project  where the project is (ROOT, its CLI), how the bench fails (BenchError) and speaks (say), one CPU to pin to
  inputs   the input: the synthetic sample with planted near-duplicate families (ensure_sample), read evenly
           over the categories (read_even_subset), and every text the recipe hands to the tokenizer
  jobs     (b) the Spark job: the runs (JobSetup, JOBS), each a `pricecurate run` subprocess timed and polled by
           samplers (run_job, TreeSampler, DiskSampler), `pricecurate baseline` (time_baselines); (d) near_quality
  loop     (a) the per-record baseline held to one CPU, (c) the tokenizer floor, (e) the recipe budget on real records
  report   the machine (machine_info) and the report: rate, ratio, fmt, outside_stages, print_report
scripts/bench.py parses the options, runs the measures in order (bench()) and keeps the figures for `pricecurate plan`;
scripts/bigrun.py borrows run_job and the samplers through it.
"""
