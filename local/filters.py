"""Lambda event filters of stream triggers, read from the project's merge template.

Chalice's decorators cannot express ``FilterCriteria``, so the deployment template adds
them (``.chalice/merge-template.json``). The runtime applies the same filters, so a record
that would never invoke a function in AWS does not invoke it here either.

Example::

    filters = stream_filters(Path("."))     # {"aggregator": [{"eventName": [...], ...}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MERGE_TEMPLATE = Path(".chalice") / "merge-template.json"


def _function_name(logical_id: str, names: list[str]) -> str | None:
    from chalice.utils import to_cfn_resource_name

    return next((name for name in names if to_cfn_resource_name(name) == logical_id), None)


def stream_filters(project_dir: Path, function_names: list[str]) -> dict[str, list[Any]]:
    """Filter patterns per function name; no template or no filters gives ``{}``."""
    path = project_dir / MERGE_TEMPLATE
    if not path.exists():
        return {}
    resources = json.loads(path.read_text()).get("Resources", {})
    filters: dict[str, list[Any]] = {}
    for logical_id, resource in resources.items():
        name = _function_name(logical_id, function_names)
        events = (resource.get("Properties") or {}).get("Events") or {}
        for event in events.values():
            criteria = (event.get("Properties") or {}).get("FilterCriteria") or {}
            patterns = [json.loads(f["Pattern"]) for f in criteria.get("Filters", [])]
            if name and patterns:
                filters.setdefault(name, []).extend(patterns)
    return filters
