"""Manifest parsing: every shipped manifest loads; every mistake is one clear UserError."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.e2e.communes import read_communes_manifest
from node.e2e.manifest import ManifestError, load_manifest, parse_manifest

REPO = Path(__file__).resolve().parents[2]
# Two-communes manifests (node/e2e/communes.py) have their own schema.
SHIPPED = sorted(p for p in (REPO / "e2e" / "manifests").rglob("*.toml") if read_communes_manifest(p) is None)


def parse(text: str):
    return parse_manifest(text.encode(), Path("m.toml"))


def test_shipped_manifests_load():
    assert len(SHIPPED) >= 9
    names = {load_manifest(p).name for p in SHIPPED}
    assert {"kill", "pause", "restart", "disconnect", "latency", "partition", "byzantine", "hostile"} <= names


def test_defaults_and_fields():
    m = parse('validators = 4\nhouseholds = 2\nduration = 30\n[[perturb]]\nat = 5\nop = "kill"\n'
              'node = "validator-1"\nduration = 3\n')
    assert m.name == "m" and m.netns is False and m.speed == 120
    assert m.perturb[0].op == "kill" and m.perturb[0].node == "validator-1" and m.perturb[0].duration == 3
    assert m.node_names == ["validator-0", "validator-1", "validator-2", "validator-3", "household-0", "household-1"]


def test_sealed_manifest_parses():
    m = load_manifest(REPO / "e2e" / "manifests" / "sealed.toml")
    assert m.seal is True and m.validators >= 4 and m.households >= 2
    assert {p.op for p in m.perturb} == {"kill", "restart"}
    assert any(p.node.startswith("household-") for p in m.perturb)


def test_manifests_seal_by_default_as_the_product_does():
    """genesis new and localnet up seal unless told not to; so does a manifest."""
    assert parse("validators = 4\n").seal is True
    assert parse("seal = false\n").seal is False


# The shipped manifests that run a clear commune, each for a reason its file states.
CLEAR = {"membership": "needs a home of its own", "late-join": "installs no snapshot"}


def test_shipped_manifests_seal_unless_they_say_why_not():
    for path in SHIPPED:
        m = load_manifest(path)
        if m.name not in CLEAR:
            assert m.seal, f"{path.name} does not seal"
            continue
        text = path.read_text()
        assert not m.seal and "seal = false" in text, path.name
        # The reason, in a comment of the manifest.
        comment = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
        assert CLEAR[m.name] in comment, path.name
    assert {load_manifest(p).name for p in SHIPPED} >= set(CLEAR)


@pytest.mark.parametrize("text, words", [
    ("validators = 4\nbogus = 1\n", "unknown field 'bogus'"),
    ("validators = 'four'\n", "expected int"),
    ("validators = 0\n", "outside"),
    ("[[perturb]]\nat = 1\nop = 'explode'\nnode = 'validator-0'\n", "unknown op"),
    ("[[perturb]]\nat = 1\nop = 'partition'\n", "needs netns = true"),
    ("[[perturb]]\nat = 1\nop = 'kill'\nnode = 'validator-9'\n", "needs node"),
    ("duration = 20\n[[perturb]]\nat = 15\nop = 'kill'\nnode = 'validator-0'\nduration = 10\n", "ends after"),
    ("byzantine = ['household-0']\n", "is not a validator"),
    ("households = 0\n", "at least one household"),
    ("[hostile]\nat = 1\nduration = 5\n", "undisturbed baseline"),
    ("[load]\nreadings_per_s = true\n", "boolean"),
    ("validators = [\n", "not valid TOML"),
    ("seal = 'yes'\n", "expected bool"),
    ("seal = true\n[[perturb]]\nat = 1\nop = 'deregister'\nnode = 'household-1'\n[[perturb]]\nat = 5\n"
     "op = 'reregister'\nnode = 'household-1'\n", "reregister is not supported with seal = true"),
    ("seal = false\n[[perturb]]\nat = 1\nop = 'rotate_data_key'\n", "rotate_data_key needs seal = true"),
    ("seal = true\nspares = 1\n[[perturb]]\nat = 1\nop = 'add_validator'\nnode = 'spare-0'\n",
     "needs snapshot_interval"),
    ("seal = true\nspares = 2\n[[perturb]]\nat = 1\nop = 'rotate_key'\nnode = 'validator-0'\nspare = 'spare-1'\n",
     "needs snapshot_interval"),
])
def test_invalid_manifest(text, words):
    with pytest.raises(ManifestError) as info:
        parse(text)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_sealing_ops_parse():
    """On a sealing commune: a household joins, validators change (with snapshots), the
    commune key rotates, a household moves out, or to a new key."""
    m = parse("seal = true\nspares = 1\nsnapshot_interval = 10\n"
              "[[perturb]]\nat = 1\nop = 'register'\nduration = 0\n"
              "[[perturb]]\nat = 2\nop = 'add_validator'\nnode = 'spare-0'\nduration = 0\n"
              "[[perturb]]\nat = 3\nop = 'remove_validator'\nnode = 'validator-3'\nduration = 0\n"
              "[[perturb]]\nat = 4\nop = 'rotate_data_key'\nduration = 0\n"
              "[[perturb]]\nat = 5\nop = 'deregister'\nnode = 'household-0'\nduration = 0\n")
    assert [p.op for p in m.perturb] == ["register", "add_validator", "remove_validator", "rotate_data_key",
                                         "deregister"]
    # A household moved to a new key: its light node restarts with the new key file.
    m = parse("seal = true\n[genesis]\nrecovery_delay_s = 600\n"
              "[[perturb]]\nat = 1\nop = 'rotate_household'\nnode = 'household-1'\nduration = 0\n"
              "[[perturb]]\nat = 2\nop = 'recover_household'\nnode = 'household-2'\nduration = 0\n")
    assert [p.op for p in m.perturb] == ["rotate_household", "recover_household"]
    rekey = load_manifest(REPO / "e2e" / "manifests" / "sealed-rekey.toml")
    assert rekey.seal and {p.op for p in rekey.perturb} == {"rotate_household", "recover_household"}
    shipped = load_manifest(REPO / "e2e" / "manifests" / "sealed-membership.toml")
    assert shipped.seal and shipped.snapshot_interval and shipped.duration <= 90
    assert {p.op for p in shipped.perturb} == {"register", "add_validator", "rotate_data_key"}


def test_invalid_manifest_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "none.toml")


def test_the_two_communes_manifest_loads():
    m = read_communes_manifest(REPO / "e2e" / "manifests" / "two-communes.toml")
    assert m is not None and m.name == "two-communes" and m.dest_down_s > 0 and m.relayer_down_s > 0
