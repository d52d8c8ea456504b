"""The local stack: one Apache Kafka broker and one Elasticsearch node, fetched with Maven.

``whale infra up|down|status`` and ``make run`` use :mod:`whale.infra.stack`::

    from whale.infra.stack import up, down, status
    stack = up(WhaleSettings())        # idempotent; stack.started names what this call started
    down(WhaleSettings(), components=stack.started)
"""

from whale.infra.settings import ELASTICSEARCH_VERSION, KAFKA_VERSION, InfraSettings

__all__ = ["ELASTICSEARCH_VERSION", "KAFKA_VERSION", "InfraSettings"]
