"""o2oloop: the O2O closed loop — online offers, verified offline consumption, data back online."""

__version__ = "0.1.0"
