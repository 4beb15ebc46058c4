"""The replay engine's parts: latency, queue-position and fee models (more to come)."""
