"""The tenant doctor: a namespace's whole path, step by step (``lakegate tenants check``)."""

from gateway.doctor.model import Report, Step, Tenant
from gateway.doctor.walker import STEPS, Doctor

__all__ = ["STEPS", "Doctor", "Report", "Step", "Tenant"]
