"""docker/: no Docker engine runs here, so check what can be checked without one.

The compose file parses, every service runs the image's entrypoint with flags that
`voisinage node run` really has, and the Dockerfile's entrypoint names real flags too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer.main
import yaml

from node.cli import app

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"


def node_run_flags() -> set[str]:
    group = typer.main.get_command(app)
    run = group.commands["node"].commands["run"]
    return {opt for param in run.params for opt in getattr(param, "opts", [])}


def entrypoint() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text()
    match = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE)
    assert match, "Dockerfile has no exec-form ENTRYPOINT"
    return json.loads(match.group(1))


def flags_in(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_dockerfile_entrypoint_runs_a_node_with_real_flags():
    argv = entrypoint()
    assert argv[:3] == ["voisinage", "node", "run"]
    assert set(flags_in(argv)) <= node_run_flags()


def test_compose_parses_with_four_validators_and_four_households():
    services = compose()["services"]
    assert sorted(services) == [f"household-{i}" for i in range(4)] + [f"validator-{i}" for i in range(4)]


def test_every_compose_command_uses_only_existing_node_run_flags():
    known = node_run_flags()
    for name, service in compose()["services"].items():
        used = set(flags_in(service["command"]))
        assert used and used <= known, f"{name}: unknown flags {sorted(used - known)}"


def test_compose_mounts_each_service_its_own_home_and_binds_http_to_loopback():
    for name, service in compose()["services"].items():
        assert service["volumes"] == [f"./net/{name}:/home/node"]
        assert all(p.startswith("127.0.0.1:") for p in service["ports"])


def test_validator_addresses_match_a_genesis_written_with_validator_ip(tmp_path):
    from node.home.homedir import create_network

    genesis = create_network(tmp_path / "net", name="Dockerville", insee="99999", validators=4,
                             households=4, base_port=26656, validator_ip="172.28.0.10")
    services = compose()["services"]
    for i, v in enumerate(genesis.validators):
        service = services[f"validator-{i}"]
        ip = service["networks"]["commune"]["ipv4_address"]
        port = v.addr.rsplit("/", 1)[1]
        assert v.addr == f"/ip4/{ip}/tcp/{port}"
        assert service["command"] == ["--listen", f"/ip4/0.0.0.0/tcp/{port}"]


def test_the_flag_check_can_fail():
    assert "--no-such-flag" not in node_run_flags()
