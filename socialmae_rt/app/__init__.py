"""The app layer: one assembly of a run (sources, sinks, backend, capture, pipeline), its options, `run`."""
