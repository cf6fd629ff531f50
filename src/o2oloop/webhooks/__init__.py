"""Merchant webhooks: endpoints, signed deliveries fed by the outbox, attempts, replays."""
