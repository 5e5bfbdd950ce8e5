"""The read API refuses what it does not understand: an unknown query parameter or ordering is a 400
naming what it takes, never a silently unfiltered (or unsorted) list."""
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

# Parameters every list takes besides its filters: pagination and ordering.
COMMON = ("page", "page_size", "ordering")


class StrictFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        known = set(COMMON) | (set(filterset_class.base_filters) if filterset_class else set())
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ValidationError({name[:64]: [f"not a parameter of this list; it takes {', '.join(sorted(known))}"]
                                   for name in unknown[:10]})
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    def get_ordering(self, request, queryset, view):
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = [p.strip() for p in params.split(",")]
            valid = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
            wrong = [f for f in fields if f.lstrip("-") not in valid]
            if wrong:
                raise ValidationError({self.ordering_param: [
                    f"{wrong[0][:64]!r} is not a sortable field; sort by {', '.join(sorted(valid))} (a leading - reverses)"]})
        return super().get_ordering(request, queryset, view)
