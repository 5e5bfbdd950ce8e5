"""Collector stub: replaced by its real implementation."""


def empty() -> dict:
    return {"hostname": "", "machine_id": None, "kernel": None, "kernel_version": None, "cmdline": None,
            "cmdline_flags": {}, "tainted": None, "cpu_count": None, "memory_bytes": None, "boot_time": None, "dmi": {}}
