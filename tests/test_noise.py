"""Lines of Spark's JVM a user cannot act on: MLlib's missing native BLAS becomes one line of ours, a taken UI
port none (the status lines name the port Spark took)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pricecurate.spark.noise import NATIVE_NOTE, is_startup_noise

# As MLlib's native loader prints them in a JVM without libblas.so.3 and liblapack.so.3 (each once per JVM).
NETLIB = tuple(f"netlib-{name}: JNI_OnLoad: dlopen({lib}) failed: {lib}: cannot open shared object file: No such "
               "file or directory" for name, lib in (("blas", "libblas.so.3"), ("lapack", "liblapack.so.3")))


def test_a_missing_native_blas_is_said_once_in_our_words(tmp_path):
    """Two JVMs in one command (as `prepare` and a run with baselines start): one note in all."""
    lines = "\n".join([*NETLIB, "ERROR Executor: a real problem"])
    (tmp_path / "jvm.txt").write_text(lines + "\n")
    script = textwrap.dedent(f"""
        import subprocess, sys
        from pricecurate.spark.noise import startup_noise_filtered
        with startup_noise_filtered():
            for _ in range(2):
                subprocess.run(["sh", "-c", "cat {tmp_path / 'jvm.txt'} >&2"])
            print("python inside", file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [NATIVE_NOTE, "ERROR Executor: a real problem",
                                        "ERROR Executor: a real problem", "python inside"]
    assert NATIVE_NOTE.startswith("pricecurate: ") and "\n" not in NATIVE_NOTE


def test_a_taken_ui_port_is_noise_and_a_failed_ui_is_not():
    assert is_startup_noise("26/12/07 01:32:48 WARN Utils: Service 'SparkUI' could not bind on port 4040. "
                            "Attempting port 4041.")
    assert not is_startup_noise("26/12/07 01:32:48 ERROR SparkUI: Failed to bind SparkUI")
    assert not is_startup_noise("26/12/07 WARN Utils: Service 'sparkDriver' could not bind on a random free port.")
