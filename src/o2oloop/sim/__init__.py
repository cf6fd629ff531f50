"""The demo city: a reproducible town of merchants and consumers running the whole loop."""
