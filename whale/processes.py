"""The map of Whale's processes: where each starts, what it reads and writes, which port it serves.

``SERVICES`` is the one table a newcomer reads to answer "where does process X start, what does it
read and write, which port". ``whale up`` takes its ports from it, and tests check that every
service's settings, the ``whale.services`` entry points, the Helm chart's defaults and the README's
table agree with it. Topics are the contract's names (``whale.topics``); ``whale.actions.<pool>``
stands for a pool's action topic.

Port defaults are unique across the table, so every process runs side by side on one machine.
A service whose port setting defaults to ``None`` serves its health routes only when the port is set
(``whale up`` and the chart set it to the table's port).
"""

from __future__ import annotations

from dataclasses import dataclass

from whale import topics

ELASTICSEARCH = "Elasticsearch"
POOL_ACTIONS = "whale.actions.<pool>"
EVENT_CENTER_API = "event center API"


@dataclass(frozen=True, slots=True)
class Service:
    """One process: ``whale run <name>``."""

    name: str
    package: str  # the Python package holding its app (and main)
    entry: str  # the ``whale.services`` entry point: "module:function"
    what: str
    port_env: str  # the environment variable of its HTTP port
    port: int  # default port: its API, or /healthz /readyz /metrics
    helm_key: str  # its section in deploy/helm/whale/values.yaml
    reads: tuple[str, ...]
    writes: tuple[str, ...]


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service(
            "event-center",
            "whale_event_center",
            "whale_event_center.app:main",
            "HTTP API: ingest, schema registry, search and trace, rules, subscriptions, to-dos, runs, approvals",
            "WHALE_EVENT_CENTER_PORT",
            8080,
            "eventCenter",
            reads=(
                topics.SCHEMAS,
                topics.RULES,
                topics.CATALOG,
                topics.SUBSCRIPTIONS,
                topics.TODOS,
                topics.EXECUTOR_STATE,
                ELASTICSEARCH,
            ),
            writes=(
                topics.INGEST,
                topics.SCHEMAS,
                topics.RULES,
                topics.SUBSCRIPTIONS,
                topics.EVENTS,
                POOL_ACTIONS,
            ),
        ),
        Service(
            "indexer",
            "whale_event_center",
            "whale_event_center.indexer:main",
            "stores every bus event in Elasticsearch",
            "WHALE_EVENT_CENTER_INDEXER_HEALTH_PORT",
            8081,
            "indexer",
            reads=(topics.EVENTS, POOL_ACTIONS, topics.RESULTS, topics.DLQ),
            writes=(ELASTICSEARCH,),
        ),
        Service(
            "dedupe",
            "whale_event_center",
            "whale_event_center.dedupe:main",
            "each (source, id) once per window, from ingest onto the bus",
            "WHALE_EVENT_CENTER_DEDUPE_HEALTH_PORT",
            8082,
            "dedupe",
            reads=(topics.INGEST,),
            writes=(topics.EVENTS, topics.DLQ),
        ),
        Service(
            "executor",
            "whale_executor",
            "whale_executor.app:main",
            "runs a pool's actions and workflows (whale run executor --pool NAME)",
            "WHALE_EXECUTOR_HEALTH_PORT",
            8083,
            "executor",
            reads=(POOL_ACTIONS, topics.CATALOG, topics.EVENTS, topics.EXECUTOR_STATE),
            writes=(topics.RESULTS, topics.EXECUTOR_STATE, topics.CATALOG, topics.DLQ),
        ),
        Service(
            "todo",
            "whale_event_center",
            "whale_event_center.todos:main",
            "events no enabled rule matches become to-do items",
            "WHALE_TODO_HEALTH_PORT",
            8085,
            "todo",
            reads=(topics.EVENTS, topics.RESULTS, topics.RULES, topics.TODOS),
            writes=(topics.TODOS,),
        ),
        Service(
            "adapters",
            "whale_adapters",
            "whale_adapters.app:main",
            "Alertmanager and generic webhooks, pollers: SaaS output into CloudEvents",
            "WHALE_ADAPTERS_PORT",
            8088,
            "adapters",
            reads=(topics.SCHEMAS, topics.ADAPTER_STATE),
            writes=(topics.INGEST, topics.ADAPTER_STATE, topics.DLQ),
        ),
        Service(
            "rule-engine",
            "whale_rule_engine",
            "whale_rule_engine.app:main",
            "matches events against rules, throttles, requests actions",
            "WHALE_RULE_ENGINE_PORT",
            8094,
            "ruleEngine",
            reads=(topics.EVENTS, topics.RULES, topics.CATALOG, topics.SCHEMAS),
            writes=(POOL_ACTIONS, topics.RESULTS, topics.DLQ),
        ),
        Service(
            "dispatcher",
            "whale_adapters",
            "whale_adapters.dispatcher.app:main",
            "pushes subscribed events to HTTP endpoints",
            "WHALE_DISPATCHER_PORT",
            8096,
            "dispatcher",
            reads=(topics.SUBSCRIPTIONS, "any subscribed topic"),
            writes=(topics.DLQ,),
        ),
        Service(
            "console",
            "whale_console",
            "whale_console.app:main",
            "web console: to-dos, events, traces, rules, dead letters (through the event center's API)",
            "WHALE_CONSOLE_PORT",
            8090,
            "console",
            reads=(EVENT_CENTER_API, topics.CATALOG),
            writes=(EVENT_CENTER_API,),
        ),
    )
}


def default_ports() -> dict[str, str]:
    """``{port environment variable: default port}`` of every service, as ``whale up`` sets them."""
    return {s.port_env: str(s.port) for s in SERVICES.values()}


def markdown_table() -> str:
    """The table as Markdown, as the README shows it."""
    lines = ["| `whale run` | package | port | reads | writes | what |", "|---|---|---|---|---|---|"]
    for s in SERVICES.values():
        reads = ", ".join(f"`{t}`" for t in s.reads)
        writes = ", ".join(f"`{t}`" for t in s.writes)
        lines.append(f"| `{s.name}` | `{s.package}` | {s.port} | {reads} | {writes} | {s.what} |")
    return "\n".join(lines)
