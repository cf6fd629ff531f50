"""Visits: every consumption a store records, the data coming back online."""
