"""Audit entries as CSV or JSON, for reviewers who keep the trail elsewhere."""
import csv
import io
import json

from fleet.security.spreadsheet import spreadsheet_cell

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


def entries_csv(entries) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    for entry in entries:
        row = entry_row(entry)
        row["before"] = json.dumps(row["before"], sort_keys=True)
        row["after"] = json.dumps(row["after"], sort_keys=True)
        # Subjects and actors can come from hosts: no control characters, no formulas.
        writer.writerow({k: spreadsheet_cell(v) for k, v in row.items()})
    return out.getvalue()


def entries_json(entries) -> str:
    return json.dumps([entry_row(e) for e in entries], indent=1)
