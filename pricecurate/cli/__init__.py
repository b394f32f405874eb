"""The ``pricecurate`` command: ``main`` dispatches, ``parser`` defines each sub-command's arguments, ``commands``
runs them, ``prepare`` builds this machine's JVM class archive."""
