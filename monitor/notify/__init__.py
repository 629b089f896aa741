"""Notify stage: alerts out to Slack and e-mail through a transactional outbox, and the weekly digest."""
