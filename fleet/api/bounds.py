"""How much host-supplied data one read-API object carries: nested lists and long strings are cut,
and the object's `truncated` names every field that was.

Hosts choose their command lines, warnings and evidence (a process's argv alone may be 256 KiB),
so a page of objects must not grow with them: in a list page each bounded field keeps at most LISTED
(64 entries and 2,048 characters in all, whatever its depth), so a page of 500 holders stays under
~4 MiB; one object fetched by its own address keeps DETAIL (past what one snapshot can hold).
"""
from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@dataclass(frozen=True)
class Bounds:
    """A budget for one field, spent across all its depths: list entries and object keys, string characters."""

    items: int
    chars: int


LISTED = Bounds(items=64, chars=2048)
DETAIL = Bounds(items=16_384, chars=1_048_576)
# One capacity-finder pick: its group's member list comes from a host (a hostile one may send a huge group).
PICK = Bounds(items=1024, chars=32_768)


class _Budget:
    def __init__(self, bounds: Bounds):
        self.items, self.chars, self.cut = bounds.items, bounds.chars, False

    def text(self, value: str) -> str:
        if len(value) > self.chars:
            self.cut = True
            value = value[:self.chars]
        self.chars -= len(value)
        return value

    def take(self) -> bool:
        if self.items <= 0:
            self.cut = True
            return False
        self.items -= 1
        return True


def _cut(value, budget: _Budget):
    if isinstance(value, str):
        return budget.text(value)
    if isinstance(value, list):
        out = []
        for item in value:
            if not budget.take():
                break
            out.append(_cut(item, budget))
        return out
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not budget.take():
                break
            out[budget.text(key)] = _cut(item, budget)
        return out
    return value


def bounded(value, bounds: Bounds) -> tuple[object, bool]:
    """(value cut to `bounds` in total over all its depths, whether anything was cut)."""
    budget = _Budget(bounds)
    return _cut(value, budget), budget.cut


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class TruncatedField(serializers.ReadOnlyField):
    """Names of the fields cut to the bounds (empty when the object is whole); filled by BoundedSerializer."""

    def __init__(self, **kwargs):
        super().__init__(source="*", help_text="Fields shortened to the API's bounds (see docs/endpoints.md); "
                                               "fetch the object by its own address for the longer form.", **kwargs)

    def to_representation(self, value):
        return []


class BoundedSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose Meta.bounded fields are cut: LISTED in a list page, DETAIL for one object."""

    truncated = TruncatedField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        bounds = LISTED if isinstance(self.parent, serializers.ListSerializer) else DETAIL
        cut = []
        for name in self.Meta.bounded:
            data[name], was_cut = bounded(data[name], bounds)
            if was_cut:
                cut.append(name)
        data["truncated"] = cut
        return data
