"""The AsyncAPI 3 document of the topic contract, generated from :mod:`whale.topics`.

``whale topics asyncapi`` prints it; ``schemas/asyncapi.yaml`` is the committed copy and a test
checks that the two agree, so the document never drifts from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from whale import __version__
from whale.topics import TOPICS


def _message_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def generate(schema_dir: Path) -> dict[str, Any]:
    """The document as a dict; messages point at ``events/<type>.json`` under ``schema_dir``."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPICS:
        channel_id = spec.name.replace(".", "_")
        channel: dict[str, Any] = {
            "address": spec.name,
            "description": spec.description,
            "bindings": {
                "kafka": {
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact"] if spec.compacted else ["delete"],
                        **({} if spec.compacted else {"retention.ms": spec.retention_ms}),
                    },
                }
            },
        }
        refs: dict[str, Any] = {}
        for event_type in spec.event_types:
            name = _message_name(event_type)
            refs[name] = {"$ref": f"#/components/messages/{name}"}
            message: dict[str, Any] = {
                "name": event_type,
                "contentType": "application/json",
                "bindings": {"kafka": {"key": {"type": "string"}}},
            }
            if (schema_dir / "events" / f"{event_type}.json").exists():
                message["payload"] = {"$ref": f"./events/{event_type}.json"}
            messages[name] = message
        if refs:
            channel["messages"] = refs
        channels[channel_id] = channel
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Whale event bus",
            "version": __version__,
            "description": "Kafka topics of Whale. Every message is a CloudEvent in the Kafka "
            "protocol binding, binary content mode (ce_ headers, content-type header, data as value).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render(schema_dir: Path) -> str:
    return yaml.safe_dump(generate(schema_dir), sort_keys=False, width=100)
