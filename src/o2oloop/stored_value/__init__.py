"""Stored-value cards: top-ups with a merchant-funded bonus, spends, closure refunds."""
