"""IOMMU Fleet host agent: reads sysfs, procfs and /dev under a root and builds one snapshot."""

__version__ = "0.1.0"
