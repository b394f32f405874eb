"""Spark plumbing that knows nothing of the recipe: the session, Hadoop filesystems, the JVM class archive, the
local Python workers' daemon, start-up noise, seeded per-item columns, bounded joins and connected components,
order statistics."""
