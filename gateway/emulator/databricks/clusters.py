"""The one Clusters API call real clients make of a Jobs-only workspace: spark-versions.

Airflow's "Test connection" for a Databricks connection calls
``GET /api/2.0/clusters/spark-versions`` (reference section 9); the py-sdk's
``w.clusters.spark_versions()`` calls the 2.1 path. Both answer a short, fixed list in the
shape Databricks gives (``{"versions": [{"key", "name"}]}``); the emulator runs no clusters.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

SPARK_VERSIONS: tuple[dict[str, Any], ...] = (
    {"key": "16.4.x-scala2.12", "name": "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"},
    {"key": "15.4.x-scala2.12", "name": "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
    {"key": "14.3.x-scala2.12", "name": "14.3 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
)


async def spark_versions(_request: web.Request) -> web.Response:
    return web.json_response({"versions": list(SPARK_VERSIONS)})


def routes() -> list[web.RouteDef]:
    return [web.get(r"/api/{version:2\.[01]}/clusters/spark-versions", spark_versions)]
