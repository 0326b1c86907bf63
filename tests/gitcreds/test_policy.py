"""The pure rules of gateway.gitcreds.policy and the Git Credentials API's wire helpers."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.databricks.git_credentials import (
    GitCredential,
    already_exists,
    parse_credential,
    parse_list,
)
from gateway.errors import DatabricksError, DatabricksInvalidRequest
from gateway.gitcreds import policy
from gateway.settings.tenants import TenantPolicy, TenantsSettings

ADO = {"git_url": "https://dev.azure.com/o/p/_git/r", "git_provider": "azureDevOpsServices"}


@pytest.mark.parametrize(
    ("spec", "needs"),
    [
        ({"git_source": ADO}, True),
        ({"git_source": {**ADO, "git_provider": "AzureDevOpsServices"}}, True),
        ({"tasks": [{"task_key": "a"}, {"task_key": "b", "git_source": ADO}]}, True),
        ({"git_source": {**ADO, "git_provider": "gitHub"}}, False),
        ({"git_source": {**ADO, "git_provider": "azureDevOpsServicesAad"}}, False),
        ({"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}, False),
        ({"git_source": "azureDevOpsServices"}, False),
        ({"git_source": {"git_provider": None}}, False),
        ({}, False),
    ],
)
def test_which_specs_check_out_from_azure_devops(spec: dict[str, Any], needs: bool) -> None:
    """The run's git_source or any task's, with the provider in any case."""
    assert policy.needs_azure_devops(spec) is needs


@pytest.mark.parametrize(
    ("kind", "can"),
    [
        ("azure-client-secret", True),
        ("azure-workload-identity", True),
        ("pat", False),
        ("oauth-m2m", False),
        ("service-account-federation", False),
        (None, False),
    ],
)
def test_only_entra_identities_can_keep_a_credential(kind: str | None, can: bool) -> None:
    """An Entra service principal (client secret or workload identity), nothing else."""
    assert policy.can_keep(kind) is can


@pytest.mark.parametrize(
    ("lifetime", "ahead"), [(3599.0, 1200.0), (1800.0, 900.0), (60.0, 30.0), (-5.0, 0.0)]
)
def test_refresh_ahead_is_half_the_life_at_most_twenty_minutes(
    lifetime: float, ahead: float
) -> None:
    assert policy.refresh_ahead(lifetime) == ahead


def test_the_setting_is_off_unless_a_namespace_says_entra() -> None:
    """Off by default, for a namespace without a policy too."""
    tenants = TenantsSettings(
        namespaces={"a": TenantPolicy(git_credentials="entra"), "b": TenantPolicy()}
    )
    assert tenants.git_credentials("a") == "entra"
    assert tenants.git_credentials("b") == "off"
    assert tenants.git_credentials("unlisted") == "off"


@pytest.mark.parametrize(
    ("status", "code", "message", "exists"),
    [
        (409, "RESOURCE_ALREADY_EXISTS", "A Git credential already exists", True),
        (400, None, "Only one Git credential is supported for a user at this time", True),
        (400, "INVALID_PARAMETER_VALUE", "Only one credential per provider is allowed", True),
        (400, "INVALID_PARAMETER_VALUE", "Invalid Git provider", False),
        (403, "PERMISSION_DENIED", "nope", False),
    ],
)
def test_which_create_refusals_mean_one_exists(
    status: int, code: str | None, message: str, exists: bool
) -> None:
    """409 or the 'only one' messages old and new; other refusals are refusals."""
    error = DatabricksInvalidRequest(message, http_status=status, error_code=code)
    assert already_exists(error) is exists


def test_a_list_is_read_with_or_without_credentials() -> None:
    """{} means none; ids may come as strings; the username is optional."""
    assert parse_list({}) == []
    items = [{"credential_id": "12", "git_provider": "gitHub"}]
    assert parse_list({"credentials": items}) == [GitCredential(12, "gitHub")]


@pytest.mark.parametrize("item", [{"git_provider": "gitHub"}, {"credential_id": 1}, "x"])
def test_a_malformed_credential_is_an_error(item: object) -> None:
    with pytest.raises(DatabricksError):
        parse_credential(item)
