"""Getting offers to people: nearby search, channels with tracking links, shares, off-peak."""
