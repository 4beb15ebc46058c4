"""One module per venue, translation only (see :mod:`makerlab.live.venues.base`)."""
