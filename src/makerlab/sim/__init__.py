"""The replay engine: timeline, matching, simulated venue, Replayer, and its models
(latency, queue position, fees)."""

from makerlab.sim.latency import Latencies
from makerlab.sim.replayer import MockOMS, Replayer

__all__ = ["Latencies", "MockOMS", "Replayer"]
