"""Small helpers every layer may use: threads, machine facts, native logs, lazy imports, versioned JSON, options."""
