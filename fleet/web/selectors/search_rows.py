"""One search hit shaped for the results table and the exports."""
from urllib.parse import urlencode

from django.urls import reverse

from fleet.web.pci_names import class_name, vendor_name


def device_row(d) -> dict:
    host_url = reverse("web:host-detail", args=[d.host.hostname])
    return {
        "hostname": d.host.hostname, "role": d.host.role, "bdf": d.bdf,
        "vendor_device": f"{d.vendor_id or '????'}:{d.device_id or '????'}",
        "vendor": vendor_name(d.vendor_id), "class": d.class_code, "class_name": class_name(d.class_code),
        "driver": d.driver, "driver_override": d.driver_override, "group": d.group_number,
        "owner_kind": d.owner_kind, "vm": d.owner_vm,
        "sriov": ("vf" if d.physfn_bdf else "pf") if d.sriov else None, "physfn": d.physfn_bdf,
        "link": f"{host_url}?{urlencode({'focus': d.bdf})}",
    }
