"""The Python workers' daemon for a local session: PySpark's own, with pyspark imported from the installed package.

Spark puts its ``pyspark.zip`` and ``py4j-*.zip`` first on the workers' path. Python keeps no compiled modules
for what it imports from a zip, so each daemon, and each worker forked from it, compiles from source every
pyspark module it imports: about a second before a local run's first Python task on this 2-core machine (1.1 s
to import pyspark in the daemon, measured with timestamps in a custom daemon; 0.12 s from the installed package).
The zips a pip-installed PySpark ships are copies of the package they sit in, so on a local master, where the
workers run this interpreter, they go after it on the path. Any other zip (a separate Spark install) stays first.

Spark runs it as ``python -m pricecurate.spark.daemon`` (``spark.python.daemon.module``): nothing may import
pyspark before ``installed_first`` has run, so this module imports only the standard library.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys


def installed_first(path: list[str]) -> list[str]:
    """``path`` with the zips that sit inside the installed pyspark package moved after every other entry."""
    zips = [entry for entry in path if entry.endswith(".zip")]
    others = [entry for entry in path if not entry.endswith(".zip")]
    spec = importlib.machinery.PathFinder.find_spec("pyspark", others)
    if spec is None or not spec.submodule_search_locations:
        return path
    package = os.path.realpath(list(spec.submodule_search_locations)[0])
    shipped = [entry for entry in zips
               if os.path.realpath(os.path.dirname(entry)) == os.path.join(package, "python", "lib")]
    return [entry for entry in path if entry not in shipped] + shipped


def main() -> None:
    sys.path[:] = installed_first(sys.path)
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
