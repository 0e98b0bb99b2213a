"""Side effects of the lifecycle, each idempotent: DB writes, CRM calls, notifications."""
