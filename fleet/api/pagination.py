from rest_framework.pagination import PageNumberPagination


class FleetPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    # With fleet.api.bounds.LISTED, a page stays a few MiB whatever the hosts sent.
    max_page_size = 500
