"""Whale's web console (``whale run console``): server-rendered pages over the event center's API."""
