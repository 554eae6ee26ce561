"""Command-line helpers: reports and benchmarks behind the `vla-edge` verbs."""
