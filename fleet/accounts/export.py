"""Audit entries as CSV or JSON, for reviewers who keep the trail elsewhere."""
import io
import json

from fleet.security.spreadsheet import csv_write

FIELDS = ("id", "at", "actor", "action", "subject", "remote_addr", "before", "after")


def entry_row(entry) -> dict:
    return {
        "id": entry.pk,
        "at": entry.at.isoformat(),
        "actor": entry.actor_name,
        "action": entry.action,
        "subject": entry.subject,
        "remote_addr": entry.remote_addr,
        "before": entry.before,
        "after": entry.after,
    }


def _csv_row(entry) -> dict:
    row = entry_row(entry)
    row["before"] = json.dumps(row["before"], sort_keys=True)
    row["after"] = json.dumps(row["after"], sort_keys=True)
    return row


def entries_csv(entries) -> str:
    # Subjects and actors can come from hosts: the shared writer strips control characters and defuses formulas.
    out = io.StringIO()
    csv_write(out, FIELDS, (_csv_row(e) for e in entries))
    return out.getvalue()


def entries_json(entries) -> str:
    return json.dumps([entry_row(e) for e in entries], indent=1)
