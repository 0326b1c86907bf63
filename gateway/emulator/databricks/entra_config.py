"""The ``entra:`` section of the emulator's configuration: the Entra ID tenants it plays.

Each app is also a service principal of the workspace, named ``name`` with application id
``client_id`` (``EntraService`` registers it), so Entra tokens are attributed like any other
credential. Secrets are ``SecretStr`` so a printed config never shows them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

# What Kubernetes workload identity and GitHub Actions put in the token they hand to Entra.
DEFAULT_FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FederatedCredential(_Frozen):
    """A federated identity credential: JWTs from ``issuer`` about ``subject`` may log in."""

    issuer: str = Field(min_length=1)
    # Compared case-sensitively, as Entra has since 2024.
    subject: str = Field(min_length=1)
    audiences: tuple[str, ...] = Field(default=(DEFAULT_FEDERATED_AUDIENCE,), min_length=1)


class EntraApp(_Frozen):
    """An app registration and its service principal in one tenant."""

    client_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    secrets: tuple[SecretStr, ...] = ()
    federated_credentials: tuple[FederatedCredential, ...] = ()
    # Resources (app ids) that require a role assignment this app lacks: Entra refuses it
    # their tokens (AADSTS501051), as for an Azure DevOps the principal was not given.
    unassigned_resources: tuple[str, ...] = ()


class EntraTenant(_Frozen):
    tenant_id: str = Field(min_length=1)
    apps: tuple[EntraApp, ...] = ()

    @model_validator(mode="after")
    def _unique_apps(self) -> EntraTenant:
        seen: set[str] = set()
        for app in self.apps:
            if app.client_id in seen:
                raise ValueError(f"client_id {app.client_id} is listed twice")
            seen.add(app.client_id)
        return self


class EntraConfig(_Frozen):
    """Who exists in the emulated Entra ID; the first tenant is the workspace's own."""

    tenants: tuple[EntraTenant, ...] = ()
    # Real tokens live 60-90 minutes; 3599 is what the token endpoint is usually seen to say.
    token_ttl_seconds: int = Field(default=3599, gt=0)
    # Azure Databricks refuses Entra tokens this close to expiry (reference section 2.1).
    workspace_min_remaining_seconds: float = Field(default=30.0, ge=0)
    # Clock skew allowed on a client assertion's exp and nbf. Entra's own figure is not
    # published; five minutes is the usual allowance of token validators.
    assertion_clock_skew_seconds: int = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> EntraConfig:
        tenants: set[str] = set()
        names: dict[str, str] = {}
        for tenant in self.tenants:
            if tenant.tenant_id in tenants:
                raise ValueError(f"tenant_id {tenant.tenant_id} is listed twice")
            tenants.add(tenant.tenant_id)
            for app in tenant.apps:
                # A multi-tenant app has one client_id everywhere; it must be one principal.
                known = names.setdefault(app.client_id, app.name)
                if known != app.name:
                    raise ValueError(
                        f"client_id {app.client_id} is named both {known!r} and {app.name!r}"
                    )
        return self

    def apps(self) -> dict[str, str]:
        """Every app's name by client id."""
        return {app.client_id: app.name for tenant in self.tenants for app in tenant.apps}
