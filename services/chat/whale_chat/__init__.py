"""The chat adapter: Slack and WeCom callbacks become approvals, to-do changes and action runs."""
