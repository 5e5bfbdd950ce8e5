"""Page filters read from a query string: every field a stripped string, checked by fleet.web.params."""
from dataclasses import fields

from fleet.web import params


class QueryFilters:
    """Mixin for filter dataclasses; `clean()` validates after every field was read."""

    @classmethod
    def from_querydict(cls, data):
        f = cls(**{fl.name: params.text(data.get(fl.name), name=fl.name) or fl.default for fl in fields(cls)})
        f.clean()
        return f

    def clean(self) -> None:
        pass
