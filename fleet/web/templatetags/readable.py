"""Template filters that show stored structures the way a person reads them."""
import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """Evidence, audit before/after: indented JSON with keys sorted, non-ASCII kept (the template escapes it)."""
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
