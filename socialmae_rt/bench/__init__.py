"""Every benchmark in one room: backends, bundles, the pipeline, soak, the ROS node, Triton. Each prints tables and writes JSON."""
