"""Settlement: batches of what each merchant is owed, paid out through the provider."""
