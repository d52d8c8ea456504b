"""Whale's events in Elasticsearch, shared by the indexer (writes) and the event center (reads).

:mod:`whale.es.store` is the client and the index template, :mod:`whale.es.documents` the layout
of one stored document (an event, a dead letter or an unreadable message) and its id.
"""
