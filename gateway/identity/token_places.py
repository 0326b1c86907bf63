"""Which setting named each token file a plan reads, so a refusal says where to look.

A token file reaches a plan from a tenant policy's ``token_file``, from ``identity.
pod_token_file``, from the gateway's environment (``DATABRICKS_OIDC_TOKEN_FILEPATH`` or its
``_FILE`` alias, ``AZURE_FEDERATED_TOKEN_FILE``, ``AWS_WEB_IDENTITY_TOKEN_FILE``) or, last,
from Flyte's default place. A file holding the wrong thing (a PAT where a JWT belongs) is
fixed where it was named, so its refusal names both. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.identity.strategy import PlanContext
from gateway.settings import sdk_env

DEFAULT_PLACE = f"the pod token's default place ({sdk_env.DEFAULT_POD_TOKEN_FILE}, Flyte's)"

Places = tuple[tuple[str, str], ...]


def policy_file_setting(where: PlanContext, path: str, variables: Sequence[str]) -> str:
    """What gave a kind its ``token_file``: for the gateway's own identity, the environment
    variable holding ``path``; for a tenant policy, its key."""
    if where.shared:
        for name in variables:
            if where.environ.get(name, "").strip() == path:
                return f"environment {name}"
        return "the gateway's environment"
    return f"tenants.namespaces.{where.namespace}.identity.token_file"


def pod_token_places(token_file: str | None, where: PlanContext) -> Places:
    """Each place the pod's own token is looked for, in Flyte's order, with its setting."""
    configured = where.settings.identity.pod_token_file
    named: dict[str, str] = {}
    if token_file:
        named[token_file] = policy_file_setting(where, token_file, sdk_env.OIDC_TOKEN_FILES)
    elif configured:
        named[configured] = "identity.pod_token_file"
    aws = where.environ.get(sdk_env.AWS_WEB_IDENTITY_TOKEN_FILE, "").strip()
    if aws:
        named.setdefault(aws, f"environment {sdk_env.AWS_WEB_IDENTITY_TOKEN_FILE}")
    named.setdefault(sdk_env.DEFAULT_POD_TOKEN_FILE, DEFAULT_PLACE)
    files = sdk_env.pod_token_files(token_file or configured, where.environ)
    return tuple((path, named.get(path, "the settings")) for path in files)


def azure_token_places(token_file: str, where: PlanContext) -> Places:
    """The federated token file of Azure workload identity, with its setting."""
    variables = ("AZURE_FEDERATED_TOKEN_FILE",)
    return ((token_file, policy_file_setting(where, token_file, variables)),)
