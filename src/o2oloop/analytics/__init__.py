"""Pure customer-analytics math: BG/NBD buying cycles, Gamma-Gamma spend, RFM scores."""
