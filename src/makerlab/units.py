"""Time units. Inside makerlab every timestamp is int64 nanoseconds since the epoch; the
tutorial's API speaks milliseconds, and sources use µs or s: convert with these."""

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
