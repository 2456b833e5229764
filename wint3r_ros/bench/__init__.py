"""Every ``wint3r-ros bench`` command (core, soak, transport, ros, model, pipeline): JSON out,
numbers in docs/BENCHMARKS.md. Benchmarks may import every other room; nothing imports them."""
