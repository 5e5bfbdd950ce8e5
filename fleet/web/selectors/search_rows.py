"""One search hit shaped for the results table and the exports."""
from functools import lru_cache
from urllib.parse import urlencode

from django.urls import reverse

from fleet.policy.intent import EMPTY, Intent
from fleet.web.pci_names import class_name, vendor_name


@lru_cache(maxsize=4096)
def _host_url(hostname: str) -> str:
    # An export repeats each host for each of its devices: reverse() once per host, not per row.
    return reverse("web:host-detail", args=[hostname])


def device_row(d: dict, intent: Intent = EMPTY) -> dict:
    """`d`: a device's RESULT_FIELDS as fleet.web.selectors.search reads them (a values() row). Its tenant is
    the one `intent` attributes its VM to (the policy's own matching), else none."""
    tenant = intent.tenant_for_holder({"vm": d["owner_vm"]}) if d["owner_vm"] else None
    return {
        "hostname": d["host__hostname"], "role": d["host__role"], "bdf": d["bdf"],
        "vendor_device": f"{d['vendor_id'] or '????'}:{d['device_id'] or '????'}",
        "vendor": vendor_name(d["vendor_id"]), "class": d["class_code"], "class_name": class_name(d["class_code"]),
        "driver": d["driver"], "driver_override": d["driver_override"], "group": d["group_number"], "group_size": d.get("group_size"),
        "owner_kind": d["owner_kind"], "vm": d["owner_vm"], "holder_pid": d.get("owner_pid"),
        "tenant": tenant.name if tenant else None,
        "sriov": ("vf" if d["physfn_bdf"] else "pf") if d["sriov"] else None, "physfn": d["physfn_bdf"],
        "link": f"{_host_url(d['host__hostname'])}?{urlencode({'focus': d['bdf']})}",
    }
