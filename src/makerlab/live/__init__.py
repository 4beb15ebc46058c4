"""Live trading: venue connections behind the same seam the replay engine implements."""
