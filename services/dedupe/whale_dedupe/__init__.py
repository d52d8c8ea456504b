"""Whale dedupe stage: ``whale run dedupe`` forwards each (source, id) once per window."""
