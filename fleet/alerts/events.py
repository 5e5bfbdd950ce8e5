"""The violation events a webhook receives, named once."""
OPENED = "violation.opened"  # new, or reopened after being resolved
RESOLVED = "violation.resolved"
WAIVER_EXPIRED = "violation.waiver_expired"  # hidden by a waiver until now, visible again
EVENTS = (OPENED, RESOLVED, WAIVER_EXPIRED)
FIRING = (OPENED, WAIVER_EXPIRED)  # the events after which the violation is open and not waived
