"""Talking to reps: the offline notifier now, the Slack app later. ``bots.blocks`` holds
pure Block Kit message builders."""
