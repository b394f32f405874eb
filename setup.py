"""The package is declared in pyproject.toml; this adds its one optional C extension, the MinHash kernel
(pricecurate/pipeline/dedup/_signing.c). Without a C compiler the build skips it and the numpy path is used."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("pricecurate.pipeline.dedup._signing", ["pricecurate/pipeline/dedup/_signing.c"],
                             extra_compile_args=["-O3"], optional=True)])
