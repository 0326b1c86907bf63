"""Building the one ApiClient: in-cluster, kubeconfig or explicit, files read off the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.kube import KubeClient
from gateway.kube.connection import KubeConfig, TokenFile, load_configuration, open_api_client
from gateway.settings import KubernetesSettings
from tests.support.clock import Clock

ENV = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.fixture
def sa_dir(tmp_path: Path) -> Path:
    """A fake projected ServiceAccount volume: a token with a trailing newline, and a CA."""
    (tmp_path / "token").write_text("projected-token-1\n")
    (tmp_path / "ca.crt").write_text("not parsed for plain http\n")
    return tmp_path


def in_cluster(sa_dir: Path, **kwargs: Any) -> KubeConfig:
    return KubeConfig(
        mode="in-cluster",
        token_file=str(sa_dir / "token"),
        ca_file=str(sa_dir / "ca.crt"),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"mode": "explicit", "token": "t"}, "host"),
        ({"mode": "explicit", "host": "http://127.0.0.1:1"}, "token"),
        ({"mode": "explicit", "host": "http://h", "token": "t", "token_file": "/f"}, "token"),
        ({"mode": "in-cluster", "token": "t"}, "token"),
        ({"mode": "explicit", "host": "127.0.0.1:6443", "token": "t"}, "host"),
        ({"mode": "in-cluster", "kubeconfig": "/k"}, "kubeconfig"),
        ({"request_timeout": (0, 30)}, "request_timeout"),
        ({"mode": "sideways"}, "mode"),
    ],
)
def test_invalid_config_names_the_key(kwargs: dict[str, Any], key: str) -> None:
    """A config that cannot work fails at start-up naming the kubernetes: key."""
    with pytest.raises(ConfigError, match=f"kubernetes: {key}:"):
        KubeConfig(**kwargs)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"mode": "in-cluster", "request_timeout_seconds": 20},
            KubeConfig(mode="in-cluster", request_timeout=(5.0, 20.0)),
        ),
        (
            {
                "mode": "explicit",
                "host": "https://k8s:6443",
                "token_file": "/t",
                "request_timeout_seconds": 2,
            },
            KubeConfig(
                mode="explicit",
                host="https://k8s:6443",
                token_file="/t",
                request_timeout=(2.0, 2.0),
            ),
        ),
        (
            {"mode": "kubeconfig", "kubeconfig": "/k", "context": "dev"},
            KubeConfig(
                mode="kubeconfig", kubeconfig="/k", context="dev", request_timeout=(5.0, 10.0)
            ),
        ),
    ],
)
def test_the_kubernetes_section_becomes_the_connection(
    section: dict[str, Any], expected: KubeConfig
) -> None:
    """Each mode of the settings section gives its config; connecting waits at most 5 s."""
    assert KubeConfig.from_settings(KubernetesSettings.model_validate(section)) == expected


def test_config_repr_hides_the_token() -> None:
    """An explicit token never shows in the config's repr."""
    config = KubeConfig(mode="explicit", host="http://127.0.0.1:1", token="s3cr3t-token")
    assert "s3cr3t" not in repr(config)


async def test_in_cluster_token_is_stripped(sa_dir: Path) -> None:
    """The projected token's trailing newline never reaches the Authorization header."""
    cfg = await load_configuration(in_cluster(sa_dir, host="http://127.0.0.1:1"), environ=ENV)
    assert cfg.api_key["BearerToken"] == "Bearer projected-token-1"
    assert cfg.host == "http://127.0.0.1:1"
    assert cfg.ssl_ca_cert is None
    assert isinstance(cfg.refresh_api_key_hook, TokenFile)


async def test_in_cluster_host_comes_from_the_environment(sa_dir: Path) -> None:
    """Without a host override the service address from the environment is used, over https."""
    cfg = await load_configuration(in_cluster(sa_dir), environ=ENV)
    assert cfg.host == "https://10.0.0.1:443"
    assert cfg.ssl_ca_cert == str(sa_dir / "ca.crt")


async def test_in_cluster_outside_a_cluster_is_a_config_error(sa_dir: Path) -> None:
    """Missing service environment variables fail with a configuration error."""
    with pytest.raises(ConfigError, match="in-cluster"):
        await load_configuration(in_cluster(sa_dir), environ={})


async def test_unusable_ca_is_a_config_error(sa_dir: Path) -> None:
    """A CA file that is not PEM fails at start-up, not at the first request."""
    with pytest.raises(ConfigError, match="ca_file"):
        await open_api_client(in_cluster(sa_dir), environ=ENV)


async def test_token_file_is_reread_when_stale(sa_dir: Path) -> None:
    """The refresh hook re-reads the rotated token once it is older than its maximum age."""
    clock = Clock()
    token_file = TokenFile(str(sa_dir / "token"), max_age=60, clock=clock)
    cfg = await load_configuration(in_cluster(sa_dir, host="http://127.0.0.1:1"), environ=ENV)
    cfg.api_key["BearerToken"] = f"Bearer {await token_file.read()}"
    (sa_dir / "token").write_text("projected-token-2\n")
    await token_file(cfg)
    assert cfg.api_key["BearerToken"] == "Bearer projected-token-1"
    clock.now = 61
    await token_file(cfg)
    assert cfg.api_key["BearerToken"] == "Bearer projected-token-2"


async def test_token_file_gone_keeps_the_previous_token(sa_dir: Path) -> None:
    """A failed re-read keeps the last good token instead of failing every request."""
    clock = Clock()
    token_file = TokenFile(str(sa_dir / "token"), max_age=60, clock=clock)
    cfg = await load_configuration(in_cluster(sa_dir, host="http://127.0.0.1:1"), environ=ENV)
    (sa_dir / "token").unlink()
    clock.now = 120
    await token_file(cfg)
    assert cfg.api_key["BearerToken"] == "Bearer projected-token-1"


async def test_explicit_token(sa_dir: Path) -> None:
    """Explicit mode sends the given token to the given host."""
    cfg = await load_configuration(
        KubeConfig(mode="explicit", host="http://127.0.0.1:1", token="caller-token")
    )
    assert cfg.api_key["BearerToken"] == "Bearer caller-token"
    assert cfg.refresh_api_key_hook is None


async def test_kubeconfig_is_loaded_into_our_own_configuration(tmp_path: Path) -> None:
    """A kubeconfig's server, token and context are used; the global default is untouched."""
    from kubernetes_asyncio.client import Configuration

    before = Configuration.get_default_copy().host
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
current-context: other
clusters:
- name: fake
  cluster: {server: "http://127.0.0.1:6443"}
users:
- name: dev
  user: {token: dev-token}
contexts:
- name: dev
  context: {cluster: fake, user: dev}
- name: other
  context: {cluster: nowhere, user: nobody}
"""
    )
    cfg = await load_configuration(
        KubeConfig(mode="kubeconfig", kubeconfig=str(kubeconfig), context="dev")
    )
    assert cfg.host == "http://127.0.0.1:6443"
    assert cfg.api_key["BearerToken"] == "Bearer dev-token"
    assert Configuration.get_default_copy().host == before


async def test_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    """A kubeconfig path that does not exist fails with a configuration error."""
    with pytest.raises(ConfigError, match="kubeconfig"):
        await load_configuration(KubeConfig(mode="kubeconfig", kubeconfig=str(tmp_path / "absent")))


async def test_no_proxy_means_no_per_request_environment_lookups(kube: KubeClient) -> None:
    """Without proxy variables the client's session does not trust the environment.

    kubernetes-asyncio builds its session with trust_env=True; lakegate turns it off through a
    private attribute, so a new client version that renames it fails here, not in production.
    """
    assert kube.api.rest_client.pool_manager._trust_env is False
