"""The benchmarks, one folder each: environment, expert or demonstrations, tasks and instructions, data module
and rollouts. Each is registered by one line of `mirror.registry.BENCHMARKS`; the shared machinery they build
on (`mirror.data`, `mirror.rollouts`) never imports them."""
