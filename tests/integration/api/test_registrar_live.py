"""The registrar's CLI on a live commune of eight households (DESIGN §12): a ninth is
registered, moves out, and its meter and PRM go to the next occupant; a key is rotated
by the household and recovered by the registrar, and the recovery is cancelled; bad
input is one line and changes nothing on chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli import main
from node.home.keyfile import new_keypair, save_key
from tests.support.livenet import LiveNet
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

HH0, HH1 = "household-0", "household-1"
METER, PRM = "021400000009", "30000000000009"       # the ninth household's (genesis has 0..7)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[LiveNet]:
    with LiveNet(tmp_path_factory.mktemp("registrar-commune") / "net", households=8) as commune:
        yield commune


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def registrar(capsys, net: LiveNet, *argv: str) -> tuple[int, str, str]:
    return run(capsys, "registrar", *argv, "--node", net.url(HH0), "--key", str(net.key_path("registrar")))


def new_key(tmp_path: Path, name: str) -> tuple[Path, str]:
    key = new_keypair()
    save_key(tmp_path / name, key)
    return tmp_path / name, key.public.hex()


def account(net: LiveNet, addr: str) -> dict | None:
    # The registrar reads the household records it registered (docs/privacy.md).
    return net.get_json(HH0, f"/accounts/{addr}", signer="registrar")


def wait_account(net: LiveNet, addr: str, predicate, what: str) -> dict:
    return wait_for(lambda: (lambda doc: doc if doc and predicate(doc) else None)(account(net, addr)), 60, what,
                    net.logs)


def register(capsys, net: LiveNet, pub: str, meter: str = METER, prm: str = PRM) -> tuple[int, str, str]:
    return registrar(capsys, net, "register", "--household-pub", pub, "--meter", meter, "--prm", prm,
                     "--label", "Foyer 9", "--kva", "6")


def test_ninth_household_moves_out_and_the_next_one_takes_its_meter(net: LiveNet, capsys, tmp_path):
    _, ninth = new_key(tmp_path, "ninth.json")
    code, _, err = register(capsys, net, ninth)
    assert code == 0, err
    wait_account(net, ninth, lambda a: a["household"], "the ninth household registered")
    assert net.get_json(HH0, "/commune")["households"] == 9
    code, _, err = registrar(capsys, net, "deregister", "--household-pub", ninth, "--memo", "déménagement")
    assert code == 0, err
    gone = wait_account(net, ninth, lambda a: a["deregistered_at"] is not None, "the ninth household gone")
    assert gone["household"] is None
    _, nxt = new_key(tmp_path, "next.json")
    code, _, err = register(capsys, net, nxt)
    assert code == 0, err
    assert wait_account(net, nxt, lambda a: a["household"], "the next occupant")["household"]["prm"] == PRM


@pytest.mark.parametrize("argv, message", [
    (["register", "--household-pub", "ab" * 32, "--meter", METER, "--prm", "3000", "--label", "x", "--kva", "6"],
     "--prm: prm must be 14 digits"),
    (["register", "--household-pub", "ab" * 32, "--meter", "021400000001", "--prm", "30000000000077",
      "--label", "x", "--kva", "6"], "meter_in_use"),
    (["register", "--household-pub", "ab" * 32, "--meter", "021400000077", "--prm", "30000000000001",
      "--label", "x", "--kva", "6"], "prm_in_use"),
    (["deregister", "--household-pub", "cd" * 32], "is not a registered household"),
    (["recover", "--household-pub", "cd" * 32, "--new-pub", "ef" * 32], "is not a registered household"),
    (["deregister", "--household-pub", "xyz"], "--household-pub must be 64 hex characters"),
], ids=["bad_prm", "duplicate_meter", "duplicate_prm", "deregister_unknown", "recover_unknown", "bad_key"])
def test_invalid_registrar_input_is_one_line_and_changes_nothing(net: LiveNet, capsys, argv, message):
    before = net.get_json(HH0, "/commune")["households"]
    code, _, err = registrar(capsys, net, *argv)
    assert code == 1 and message in err and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert account(net, "ab" * 32) is None and net.get_json(HH0, "/commune")["households"] == before


def test_invalid_registrar_signed_by_a_household_key(net: LiveNet, capsys, tmp_path):
    _, pub = new_key(tmp_path, "k.json")
    code, _, err = run(capsys, "registrar", "register", "--household-pub", pub, "--meter", "021400000088",
                       "--prm", "30000000000088", "--label", "x", "--kva", "6", "--node", net.url(HH0),
                       "--key", str(net.key_path(HH1)))
    assert code == 1 and "not_registrar" in err and len(err.splitlines()) == 1
    assert account(net, pub) is None


def test_registrar_set_change_cosigned_by_the_validators(net: LiveNet, capsys, tmp_path):
    clerk_path, clerk = new_key(tmp_path, "clerk.json")
    change, signed = tmp_path / "change.json", tmp_path / "signed.json"
    code, _, err = run(capsys, "registrar", "propose-set-change", "--add", clerk, "--out", str(change),
                       "--node", net.url(HH0))
    assert code == 0, err
    code, _, err = run(capsys, "registrar", "submit", "--in", str(change), "--node", net.url(HH0))
    assert code == 1 and "too few signatures: 0 of the 1" in err
    code, _, err = run(capsys, "registrar", "cosign", "--in", str(change), "--key", str(net.key_path(HH0)),
                       "--out", str(signed))
    assert code == 1 and "is not one of this change's validators" in err
    code, _, err = run(capsys, "registrar", "cosign", "--in", str(change), "--key", str(net.key_path("validator-0")),
                       "--out", str(signed))
    assert code == 0, err
    code, _, err = run(capsys, "registrar", "submit", "--in", str(signed), "--node", net.url(HH0))
    assert code == 0, err
    wait_for(lambda: clerk in (net.get_json(HH0, "/registrars") or {}).get("registrars", []), 60,
             "the new registrar", net.logs)
    _, pub = new_key(tmp_path, "family.json")
    code, _, err = run(capsys, "registrar", "register", "--household-pub", pub, "--meter", "021400000066",
                       "--prm", "30000000000066", "--label", "x", "--kva", "6", "--node", net.url(HH0),
                       "--key", str(clerk_path))
    assert code == 0, err
    wait_account(net, pub, lambda a: a["household"], "a household registered by the new registrar")
    code, _, err = run(capsys, "registrar", "submit", "--in", str(signed), "--node", net.url(HH0))
    assert code == 1 and "stale change" in err


@pytest.mark.parametrize("argv, message", [
    (["--remove", "ab" * 32], "unknown_registrar"),
    ([], "the change must add or remove a registrar"),
], ids=["remove_unknown", "empty"])
def test_invalid_registrar_set_change_is_one_line(net: LiveNet, capsys, tmp_path, argv, message):
    code, _, err = run(capsys, "registrar", "propose-set-change", *argv, "--out", str(tmp_path / "c.json"),
                       "--node", net.url(HH0))
    assert code == 1 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c.json").exists()


def test_recovery_is_shown_then_cancelled_and_a_household_rotates_its_key(net: LiveNet, capsys, tmp_path):
    hh1 = net.address(HH1)
    _, lost = new_key(tmp_path, "lost.json")
    code, _, err = registrar(capsys, net, "recover", "--household-pub", hh1, "--new-pub", lost)
    assert code == 0, err
    pending = wait_account(net, hh1, lambda a: a["recovery"], "a pending recovery")["recovery"]
    delay = net.get_json(HH0, "/commune")["params"]["recovery_delay_s"]
    assert pending["new_key"] == lost and pending["completes_at"] == pending["start"] + delay
    code, _, err = run(capsys, "tx", "cancel-recovery", "--node", net.url(HH1), "--key", str(net.key_path(HH1)))
    assert code == 0, err
    wait_account(net, hh1, lambda a: a["recovery"] is None, "the recovery cancelled")
    # The household itself moves to a new key: both keys sign.
    new_path, new_pub = new_key(tmp_path, "new.json")
    code, _, err = run(capsys, "keys", "rotate", "--key", str(net.key_path(HH1)), "--new-key", str(new_path),
                       "--node", net.url(HH1))
    assert code == 0, err
    old = wait_account(net, hh1, lambda a: a["rotated_to"], "the rotation")
    assert old["rotated_to"] == new_pub and account(net, new_pub)["household"]["label"] == "Foyer 1"
    code, _, err = run(capsys, "tx", "transfer", "--to", net.address(HH0), "--amount", "1", "--node",
                       net.url(HH1), "--key", str(net.key_path(HH1)))
    assert code == 1 and "key_rotated" in err
