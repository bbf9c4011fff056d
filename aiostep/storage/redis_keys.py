"""Redis key names that share a Redis Cluster hash slot."""

from __future__ import annotations

__all__ = ["companion"]


def companion(record_key: str, suffix: str) -> str:
    """The name of a key that belongs with ``record_key``: in its Redis Cluster hash slot.

    A key's slot hashes its hash tag (the text between its first ``{`` and the next ``}``,
    when not empty), else the whole name. ``{<record key>}<suffix>`` has the record's whole
    name as its tag, so it hashes as the record does; a record name with a tag of its own
    (a prefix like ``"{bot}:"``) keeps it: ``<record key><suffix>``.
    """
    start = record_key.find("{")
    if start != -1:
        end = record_key.find("}", start + 1)
        if end > start + 1:
            return record_key + suffix
    if "}" in record_key:
        # "{" + name + "}" would end its tag at the name's own "}": a different slot
        raise ValueError(
            f"Redis key {record_key!r} has a '}}' but no hash tag, so no other key can share "
            "its cluster slot; use storage keys and a prefix without braces, or a prefix with "
            "a whole hash tag such as 'aiostep:{bot}:'"
        )
    return "{" + record_key + "}" + suffix
