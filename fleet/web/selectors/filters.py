"""Page filters read from a query string: every field a bounded, stripped string."""
from dataclasses import fields

MAX_FILTER_LENGTH = 200


class QueryFilters:
    """Mixin for filter dataclasses; `clean()` validates after every field was read."""

    @classmethod
    def from_querydict(cls, data):
        f = cls(**{fl.name: (data.get(fl.name) or fl.default or "").strip()[:MAX_FILTER_LENGTH] for fl in fields(cls)})
        f.clean()
        return f

    def clean(self) -> None:
        pass
