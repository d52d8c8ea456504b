"""Whale to-do stage: ``whale run todo`` turns events no enabled rule matches into to-do items."""
