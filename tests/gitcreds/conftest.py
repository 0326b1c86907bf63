"""The Azure stack the Git credential tests run on (``tests.gitcreds.stack``)."""

from tests.gitcreds.stack import azure_stack_factory

__all__ = ["azure_stack_factory"]
