"""A new system joins Whale with the pull SDK: it subscribes to CMDB events and writes its findings
back as events (``ciaudit.ci.checked``, caused by the CMDB event, so the chain is traceable).

Run it next to the platform (``make run``) and the sample CMDB (``python examples/cmdb/app.py``)::

    python examples/sdk_subscriber.py --group ci-audit
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from whale import sdk
from whale.cloudevent import CloudEvent
from whale.correlation import caused_by
from whale.settings import WhaleSettings

SOURCE = "/examples/ci-audit"


def audit(ci: Any) -> dict[str, Any]:
    """The business logic: a configuration item needs an owner and a kind."""
    ci = ci if isinstance(ci, dict) else {}
    problems = [f"missing {name}" for name in ("owner", "kind") if not ci.get(name)]
    return {"ci": ci.get("id"), "ok": not problems, "problems": problems}


async def run(
    settings: WhaleSettings,
    *,
    group: str = "ci-audit",
    types: Sequence[str] = ("cmdb.ci.created", "cmdb.ci.updated"),
    limit: int | None = None,
    from_beginning: bool = False,
) -> list[CloudEvent]:
    """Handle events until ``limit`` were handled (forever when None); returns what was published."""
    published: list[CloudEvent] = []
    async with sdk.subscribe(settings, group=group, types=types, from_beginning=from_beginning) as events:
        async for event in events:
            result = caused_by(
                event, type="ciaudit.ci.checked", source=SOURCE, subject=event.subject, data=audit(event.data)
            )
            await sdk.publish(result, settings=settings)
            published.append(result)
            if limit is not None and len(published) >= limit:
                break  # leaving the block normally commits the event just handled
    return published


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--group", default="ci-audit")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many events")
    parser.add_argument("--from-beginning", action="store_true")
    args = parser.parse_args(argv)
    settings = WhaleSettings()
    try:
        results = asyncio.run(
            run(settings, group=args.group, limit=args.limit, from_beginning=args.from_beginning)
        )
    except KeyboardInterrupt:
        return 130
    finally:
        sdk.close()
    print(f"published {len(results)} audit results")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
