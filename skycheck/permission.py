"""The shape every access question shares: one verb on one resource in one scope.

A catalogue check (models.Requirement), an excess grant (excess_types.ExcessItem) and a
risky need (excess_types.NeededRisk) are each a Permission with more beside it; its own
module so models.py and excess_types.py can both build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Permission:
    """One verb on one resource in one namespace ("" = cluster-wide) on one named object
    ("" = every object): the shape a check, an excess grant and a needed risk share."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def resource_path(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def describe(self) -> str:
        """Human form in kubectl's words, e.g. ``create pods/exec -n default``."""
        res = self.resource_path
        if self.group:
            res = f"{self.resource}.{self.group}" + (
                f"/{self.subresource}" if self.subresource else ""
            )
        text = f"{self.verb} {res}"
        if self.name:
            text += f" {self.name}"
        return text + (f" -n {self.namespace}" if self.namespace else " (cluster-wide)")

    def permission_json(self) -> dict[str, str]:
        """The six fields under their JSON report names (docs/json-schema.md)."""
        return {
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
            "subresource": self.subresource,
            "namespace": self.namespace,
            "name": self.name,
        }
