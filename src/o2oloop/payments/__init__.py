"""Payment intents, the provider interface and the built-in sandbox provider."""
