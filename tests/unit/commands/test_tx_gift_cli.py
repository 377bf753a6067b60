"""``voisinage tx gift --to solidarity``: a standing gift to the households in need."""

from __future__ import annotations

from tests.unit.governance.test_gov_cli import (  # noqa: F401  (fixtures)
    CHAIN_NOW_S, OTHER, key_file, node, run_cli, server_url,
)
from tokens.rules_assoc import compute_fund_address
from tokens.txs import SOLIDARITY, StandingGift


def tx(capsys, *args):
    return run_cli(capsys, "tx", *args)


def test_gift_to_solidarity_signs_the_reserved_beneficiary(node, key_file, capsys):
    url, fake = node
    rc, out, err = tx(capsys, "gift", "--to", "solidarity", "--bp", "500", "--days", "30", "--node", url,
                      "--key", key_file)
    assert (rc, err) == (0, "")
    [gift] = fake.received
    assert isinstance(gift, StandingGift)
    assert (gift.beneficiary, gift.bp, gift.until) == (SOLIDARITY, 500, CHAIN_NOW_S + 30 * 86_400)


def test_gift_to_a_key_is_unchanged(node, key_file, capsys):
    url, fake = node
    rc, _, _ = tx(capsys, "gift", "--to", OTHER.hex(), "--bp", "500", "--days", "1", "--node", url, "--key", key_file)
    assert rc == 0 and fake.received[0].beneficiary == OTHER


def test_invalid_gift_target_names_both_forms(node, key_file, capsys):
    url, fake = node
    rc, _, err = tx(capsys, "gift", "--to", "solidaire", "--bp", "500", "--days", "1", "--node", url,
                    "--key", key_file)
    assert rc == 1 and "a key, 'fund:NAME' or 'solidarity'" in err and fake.received == []


def test_gift_to_a_category_fund_signs_the_funds_address(node, key_file, capsys):
    url, fake = node
    rc, _, err = tx(capsys, "gift", "--to", "fund:energy", "--bp", "250", "--days", "1", "--node", url,
                    "--key", key_file)
    assert (rc, err) == (0, "")
    assert fake.received[0].beneficiary == compute_fund_address("energy") != compute_fund_address("roads")


def test_gift_to_a_fund_without_a_name_is_one_line(node, key_file, capsys):
    url, fake = node
    rc, _, err = tx(capsys, "gift", "--to", "fund:", "--bp", "250", "--days", "1", "--node", url, "--key", key_file)
    assert rc == 1 and err.count("\n") == 1 and "fund:NAME" in err and fake.received == []
