#!/usr/bin/env bash
# Set up pricecurate on a fresh machine: check Java, create .venv, install the
# package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}

if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: Java 17+ not found; installing openjdk-17-jre-headless with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "setup: error: Spark 4 needs Java 17 or newer on PATH (found: $(java -version 2>&1 | head -n 1 || echo none))." >&2
    echo "setup: install it, e.g. 'sudo apt-get install openjdk-17-jre-headless' (Debian/Ubuntu)," >&2
    echo "setup: 'brew install openjdk@17' (macOS), or set JAVA_HOME and PATH to a JDK 17+." >&2
    exit 1
  fi
fi

# Headless Chromium renders the HTML report in a test; optional (that test skips without it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium (Debian package) for the report rendering test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "setup: could not install chromium; the report rendering test will be skipped"
fi

# A native BLAS and LAPACK for Spark MLlib (the baselines); optional: without them MLlib uses its Java code and
# pricecurate says so once. The reference libraries are single-threaded, so they never compete with Spark's tasks.
if ! ldconfig -p 2>/dev/null | grep -q 'liblapack\.so\.3 ' && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing libblas3 and liblapack3 (Debian packages) for Spark MLlib"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libblas3 liblapack3 >/dev/null) \
    || echo "setup: could not install libblas3 and liblapack3; MLlib uses its Java implementation"
fi

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "setup: error: Python 3.10+ is needed, found " + sys.version.split()[0])'

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
# setup.py's C kernels are optional: without a compiler pip skips them and the same results come from Python.
if "$VENV/bin/python" -c 'import pricecurate.rules._scrub, pricecurate.pipeline.dedup._signing' 2>/dev/null; then
  echo "setup: C kernels built (the rules' scrub, MinHash signing)"
else
  echo "setup: warning: the C kernels were not built (no C compiler?); the same results come from their Python" \
       "paths, more slowly. Install gcc (e.g. 'apt-get install gcc') and run this again to build them."
fi
# Java's class data sharing for Spark's classes: every local session then starts seconds sooner (the tests too).
echo "setup: building the JVM class archive (pricecurate prepare, about two minutes)"
"$VENV/bin/pricecurate" prepare \
  || echo "setup: warning: no JVM class archive; everything works, each local Spark start is ~3 s slower"
echo "setup: ready — Java $(java_major), $("$VENV/bin/python" --version), pyspark $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
