"""spark-submit entry point: ``spark-submit jobs/curate.py <pricecurate run arguments>``."""

import sys

from pricecurate.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
