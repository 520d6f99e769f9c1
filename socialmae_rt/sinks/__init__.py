"""Where results go: every sink takes the same calls (base.Sink). JSONL file, console, memory,
and the ZeroMQ publisher (with its subscriber) live here; the ROS sink lives with the node."""

from socialmae_rt.sinks.base import MemorySink, Sink
from socialmae_rt.sinks.console import ConsoleSink
from socialmae_rt.sinks.jsonl import JsonlSink

__all__ = ["ConsoleSink", "JsonlSink", "MemorySink", "Sink"]
