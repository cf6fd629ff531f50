"""The cashier's terminal: pairing a device to a terminal, and the page at the counter."""
