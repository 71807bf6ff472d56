"""The local AWS endpoint: a moto server, and DynamoDB tables created from template.yaml itself.

template.yaml is the one source of truth for the tables. moto's CloudFormation drops TTL (and skips
the HTTP API), so instead of deploying the template we read each ``AWS::DynamoDB::Table``'s
``Properties`` and create the table with the DynamoDB API, then apply TTL and PITR separately.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from moto.server import ThreadedMotoServer

DEFAULT_HOST = "127.0.0.1"


@dataclass
class MotoServer:
    """A running moto server; ``endpoint_url`` is what boto3 reads from ``AWS_ENDPOINT_URL``."""

    server: ThreadedMotoServer
    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Shut the server down and join its thread."""
        self.server.stop()


def start_moto_server(host: str = DEFAULT_HOST, port: int = 0, *, quiet: bool = True) -> MotoServer:
    """Start moto in server mode on ``host:port`` (port 0 picks a free port) and return it once listening.

    ``quiet`` silences werkzeug's one-line-per-request access log.
    """
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return MotoServer(server=server, host=bound_host, port=int(bound_port))


@dataclass
class MotoProcess:
    """A moto server in its own process, out of reach of in-process ``mock_aws`` (which resets moto's
    global backends on exit, and would wipe a ThreadedMotoServer's tables in the same process)."""

    process: subprocess.Popen
    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Terminate the server process and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_moto_process(host: str = DEFAULT_HOST, port: int = 0, timeout_s: float = 30.0) -> MotoProcess:
    """Start ``python -m moto.server`` on ``host:port`` (0: a free port) and return once it answers."""
    port = port or free_port(host)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = MotoProcess(process=process, host=host, port=port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with status {process.returncode} (port {port} taken?)")
        try:
            with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=1):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"moto server did not answer on {server.endpoint_url} within {timeout_s:.0f} s")


class _CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _cfn_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    key = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    return {key: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(template_path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template, keeping intrinsic functions as their long-form dicts."""
    with open(template_path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # _CfnLoader is a SafeLoader


def table_resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of every ``AWS::DynamoDB::Table`` in the template."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    }


def _create_table_kwargs(table_name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """Translate CloudFormation table Properties into ``CreateTable`` arguments."""
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput", "TableClass"):
        if key in props:
            kwargs[key] = props[key]
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    sse = props.get("SSESpecification")
    if sse:
        # CloudFormation spells it SSEEnabled; the API spells it Enabled.
        api_sse = {"Enabled": bool(sse.get("SSEEnabled", False))}
        for key in ("SSEType", "KMSMasterKeyId"):
            if key in sse:
                api_sse[key] = sse[key]
        kwargs["SSESpecification"] = api_sse
    return kwargs


def create_tables(
    template_path: str | Path,
    dynamodb_client: Any,
    names: Mapping[str, str],
) -> dict[str, str]:
    """Create the tables named in ``names`` (template logical id -> table name) from template.yaml.

    Key schema, attribute definitions, indexes, billing mode and encryption come from the template's
    own Properties; TimeToLiveSpecification and PointInTimeRecoverySpecification are applied after
    creation. A table that already exists is left as it is. Returns ``names`` for convenience.
    """
    tables = table_resources(load_template(template_path))
    missing = sorted(set(names) - set(tables))
    if missing:
        raise KeyError(f"template {template_path} has no AWS::DynamoDB::Table named {', '.join(missing)}")
    existing = set(dynamodb_client.list_tables().get("TableNames", []))
    for logical_id, table_name in names.items():
        if table_name in existing:
            continue
        props = tables[logical_id]
        dynamodb_client.create_table(**_create_table_kwargs(table_name, props))
        dynamodb_client.get_waiter("table_exists").wait(TableName=table_name)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb_client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb_client.update_continuous_backups(
                TableName=table_name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
    return dict(names)
