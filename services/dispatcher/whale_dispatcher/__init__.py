"""Push subscriptions: ``whale run dispatcher`` delivers matching events to HTTP endpoints."""
