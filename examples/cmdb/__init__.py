"""A small legacy CMDB (configuration items CRUD) that publishes Whale events by adding one line."""
