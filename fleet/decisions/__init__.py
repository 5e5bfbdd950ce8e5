"""Decisions: which whole IOMMU groups are free to hand out (the capacity finder), and whether one
hand-over is safe (the pre-flight, the real rule engine run on the hypothetical state).

- `hostcritical.py` the one definition of a member the host cannot give away; `groups.py` the group
  conditions as SQL (search terms `group:free`/`group:single`, the group-size column) and as the
  authoritative Python check (`assess_group`); `finder.py` the capacity finder; `preflight.py` the
  pure pre-flight (hypothetical state, findings, ordered plan); `services.py` runs it for a request
  and audits it; `views.py`/`api.py` thin page and API views.
"""
