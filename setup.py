"""The package is declared in pyproject.toml; this adds its optional C kernels: MinHash signing
(pricecurate/pipeline/dedup/_signing.c) and the ASCII scrub (pricecurate/rules/_scrub.c). Without a C compiler
the build skips them and their Python paths, which define what they return, are used."""

from setuptools import Extension, setup

KERNELS = {"pricecurate.pipeline.dedup._signing": "pricecurate/pipeline/dedup/_signing.c",
           "pricecurate.rules._scrub": "pricecurate/rules/_scrub.c"}

setup(ext_modules=[Extension(name, [source], extra_compile_args=["-O3"], optional=True)
                   for name, source in KERNELS.items()])
