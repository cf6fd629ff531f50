"""The merchant's dashboard: an hourly aggregate per store, kept by event handlers, and the
numbers a shop owner reads at a glance, taken from it."""
