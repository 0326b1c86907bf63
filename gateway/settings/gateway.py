"""``Settings``: the whole of gateway.yaml with the tenants file it names, and the checks that
span its sections (a workspace a tenant names is on the allow-list; what needs Kubernetes has
it)."""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.settings.base import Frozen, normalize_host
from gateway.settings.callers import CallersSettings
from gateway.settings.process import LoggingSettings, PollerSettings, ServerSettings, StoreSettings
from gateway.settings.tenants import TenantsSettings
from gateway.settings.upstreams import (
    DatabricksSettings,
    IdentityOptions,
    KubernetesSettings,
    WorkspaceSettings,
)
from gateway.settings.webhooks import WebhooksSettings
from gateway.webhooks.guard import Guard, UrlRefused


class Settings(Frozen):
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    databricks: DatabricksSettings = DatabricksSettings()
    poller: PollerSettings = PollerSettings()
    identity: IdentityOptions = IdentityOptions()
    kubernetes: KubernetesSettings = KubernetesSettings()
    callers: CallersSettings = CallersSettings()
    workspaces: dict[str, WorkspaceSettings] = Field(default_factory=dict)
    tenants_file: str | None = None
    tenants: TenantsSettings = TenantsSettings()
    webhooks: WebhooksSettings = WebhooksSettings()

    @model_validator(mode="after")
    def _references(self) -> Settings:
        known = set(self.workspaces)
        wanted = [("tenants.defaults.workspace", self.tenants.defaults.workspace)] + [
            (f"tenants.namespaces.{ns}.workspace", p.workspace)
            for ns, p in self.tenants.namespaces.items()
        ]
        for key, name in wanted:
            if name is not None and name not in known:
                raise ValueError(
                    f"{key}: workspace '{name}' is not in the workspaces allow-list "
                    f"(known: {', '.join(sorted(known)) or 'none'})"
                )
        if self.kubernetes.mode == "off":
            if "kubernetes" in self.callers.methods:
                raise ValueError(
                    "callers.methods: 'kubernetes' needs kubernetes.mode other than off"
                )
            if self.callers.uses_selectors():
                raise ValueError(
                    "callers: a namespace_selector reads namespace labels, which needs "
                    "kubernetes.mode other than off"
                )
        return self

    @model_validator(mode="after")
    def _one_entry_per_host(self) -> Settings:
        # Hosts are normalised, so two spellings of one workspace meet here: two entries would
        # give it two caches, two token endpoints and two active-run caps.
        seen: dict[str, str] = {}
        for name, workspace in self.workspaces.items():
            other = seen.setdefault(workspace.host, name)
            if other != name:
                raise ValueError(
                    f"workspaces: '{other}' and '{name}' are one workspace ({workspace.host}); "
                    "list it once"
                )
        return self

    @model_validator(mode="after")
    def _webhook_urls(self) -> Settings:
        guard = Guard.of(self.webhooks.allow_networks, allow_http=self.webhooks.allow_http)
        blocks = [("tenants.defaults.webhooks", self.tenants.defaults.webhooks)] + [
            (f"tenants.namespaces.{ns}.webhooks", p.webhooks)
            for ns, p in self.tenants.namespaces.items()
            if p.webhooks is not None
        ]
        for key, block in blocks:
            for url in (block.url, *block.allowed_url_prefixes):
                if url is not None:
                    try:
                        guard.check_url(url)
                    except UrlRefused as exc:
                        raise ValueError(f"{key}: {exc}") from exc
            if block.secret is not None and self.kubernetes.mode == "off":
                raise ValueError(f"{key}.secret: a Secret needs kubernetes.mode other than off")
        return self

    def workspace_for(self, namespace: str) -> WorkspaceSettings | None:
        name = self.tenants.workspace_name(namespace)
        return self.workspaces.get(name) if name else None

    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(w.host for w in self.workspaces.values())

    def workspace_named(self, name_or_host: str) -> tuple[str, WorkspaceSettings] | None:
        """A workspace by its allow-list name or by its host; None when it is not listed."""
        if name_or_host in self.workspaces:
            return name_or_host, self.workspaces[name_or_host]
        try:
            wanted = normalize_host(name_or_host)
        except ValueError:
            return None
        for name, workspace in self.workspaces.items():
            if workspace.host == wanted:
                return name, workspace
        return None
