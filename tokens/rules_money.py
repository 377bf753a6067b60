"""Value transactions (DESIGN §4): Transfer, StandingGift, RevokeGift, Service,
PublicService, Offer, Accept, Spend, and Issue of a commune-defined class
(docs/classes.md). Transfer, Offer and Accept are class-generic."""

from __future__ import annotations

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.ledger import Ledger
from tokens.rules_assoc import check_gift_target, get_association, is_active_association
from tokens.rules_household import get_settled_until
from tokens.rules_membership import is_former_household
from tokens.settlement import DAY_S, process_contribution
from tokens.txs import (
    Accept, Issue, Offer, PublicService, RevokeGift, Service, Spend, StandingGift, Transfer,
)
from wire.units import Minutes

HOUR = L.CLASS_INDEX["hour"]
MAX_GIFT_BP = 10_000


def require_class(lg: Ledger, cls: str) -> None:
    # DESIGN §4, docs/classes.md: accounts hold balances per class: kwh (Wh), hour
    # (minutes) and the classes the genesis defines.
    if cls not in lg.genesis.class_names:
        raise InvalidTx("unknown_class", f"no token class {cls!r} ({', '.join(lg.genesis.class_names)})")


def check_positive(amount: int, what: str = "amount") -> None:
    if amount <= 0:
        raise InvalidTx("zero_amount", f"{what} must be positive")


def check_not_self(a: bytes, b: bytes) -> None:
    if a == b:
        raise InvalidTx("self_payment", "an account cannot pay itself")


def require_payer(lg: Ledger, addr: bytes) -> bool:
    """True for a household; False for a household that moved out (DESIGN §12: it keeps
    its account and may transfer what it holds) or an association (docs/euro.md: it
    spends what it was given, with no credit line); anyone else is refused."""
    if lg.get_household(addr) is not None:
        return True
    if not is_former_household(lg, addr) and get_association(lg, addr) is None:
        lg.require_household(addr)
    return False


def check_payer_balance(lg: Ledger, addr: bytes, household: bool, cls: str, amount: int) -> None:
    # DESIGN §4: a household's voluntary spending is limited by -credit_limit; a
    # household that moved out has no credit line.
    if household:
        lg.check_spendable(addr, cls, amount)
        return
    held = lg.get_balance(addr, cls)
    if held < amount:
        raise InvalidTx("insufficient_balance", f"an account with no credit line holds {held} {cls}, "
                                                f"less than {amount}")


def process_transfer(lg: Ledger, tx: Transfer, tx_id: bytes) -> None:
    # DESIGN §4 Transfer: to, class, amount, memo; voluntary, so limited by -credit_limit.
    household = require_payer(lg, tx.signer)
    if not is_active_association(lg, tx.to):
        lg.require_household(tx.to, "unknown_recipient")
    require_class(lg, tx.cls)
    check_positive(tx.amount)
    check_not_self(tx.signer, tx.to)
    check_payer_balance(lg, tx.signer, household, tx.cls, tx.amount)
    lg.process_nonce(tx.signer, tx.nonce)
    lg.process_move(tx.signer, tx.to, tx.cls, tx.amount)


def get_committed_gift_bp(lg: Ledger, giver: bytes) -> int:
    """bp of the giver's gifts that may still apply to an interval not yet settled."""
    settled = get_settled_until(lg)
    return sum(bp for _, (_, bp, until) in lg.ov.iter_prefix(L.GIFT + giver) if until > settled)


def process_standing_gift(lg: Ledger, tx: StandingGift, tx_id: bytes) -> None:
    # DESIGN §4 StandingGift: bp of each future mint to the beneficiary, until a time;
    # several per household, together <= 10 000 bp.
    # Issue 19 item 4: the beneficiary may also be an association or a category fund.
    lg.require_household(tx.signer)
    check_gift_target(lg, tx.signer, tx.beneficiary)
    if not 1 <= tx.bp <= MAX_GIFT_BP:
        raise InvalidTx("bad_bp", f"a gift is 1 to {MAX_GIFT_BP} basis points, got {tx.bp}")
    if tx.until <= lg.now_s:
        raise InvalidTx("expired", f"until {tx.until} is not after block time {lg.now_s}")
    total = get_committed_gift_bp(lg, tx.signer) + tx.bp
    if total > MAX_GIFT_BP:
        raise InvalidTx("gifts_over_100pct", f"standing gifts would total {total} bp, over {MAX_GIFT_BP}")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.key_gift(tx.signer, tx_id), [tx.beneficiary, tx.bp, tx.until])


def process_revoke_gift(lg: Ledger, tx: RevokeGift, tx_id: bytes) -> None:
    # DESIGN §4: RevokeGift ends one standing gift, named by the id of its StandingGift.
    lg.require_household(tx.signer)
    key = L.key_gift(tx.signer, tx.gift)
    if lg.ov.get(key) is None:
        raise InvalidTx("unknown_gift", f"no standing gift {tx.gift.hex()[:16]}… from this household")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.delete(key)


def process_service(lg: Ledger, tx: Service, tx_id: bytes) -> None:
    # DESIGN §4 Service: provider and beneficiary both sign; the beneficiary (signer)
    # pays N minutes of hour: a time bank as mutual credit, limited by -credit_limit.
    lg.require_household(tx.signer)
    lg.require_household(tx.provider, "unknown_provider")
    check_positive(tx.minutes, "minutes")
    check_not_self(tx.signer, tx.provider)
    lg.check_spendable(tx.signer, "hour", tx.minutes)
    lg.process_nonce(tx.signer, tx.nonce)
    lg.process_move(tx.signer, tx.provider, "hour", tx.minutes)


def compute_public_service_minutes(on_call_s: int, rate: dict) -> Minutes:
    # DESIGN §3 public_service_rate: 5 h per 24 h on call.
    return Minutes(on_call_s * rate["minutes"] // rate["per_s"])


def process_public_service(lg: Ledger, tx: PublicService, tx_id: bytes) -> None:
    # DESIGN §4 PublicService (registrar): credits on-call duty in hours from the treasury.
    lg.require_registrar(tx.signer)
    lg.require_household(tx.beneficiary, "unknown_recipient")
    minutes = compute_public_service_minutes(tx.on_call_s, lg.params["public_service_rate"])
    check_positive(minutes, "credited minutes")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.process_treasury(HOUR, -minutes)
    lg.process_credit(tx.beneficiary, "hour", minutes)
    process_contribution(lg, tx.beneficiary, lg.now_s // DAY_S, 0, minutes)


def process_offer(lg: Ledger, tx: Offer, tx_id: bytes) -> None:
    # DESIGN §4 Offer: one leg of an atomic exchange, open until ``expires``.
    lg.require_household(tx.signer)
    require_class(lg, tx.give_cls)
    require_class(lg, tx.want_cls)
    check_positive(tx.give_amount, "give_amount")
    check_positive(tx.want_amount, "want_amount")
    if tx.counterparty is not None:
        lg.require_household(tx.counterparty, "unknown_counterparty")
        check_not_self(tx.signer, tx.counterparty)
    if tx.expires <= lg.now_s:
        raise InvalidTx("expired", f"expires {tx.expires} is not after block time {lg.now_s}")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.key_offer(tx_id), [tx.signer, tx.give_cls, tx.give_amount, tx.want_cls, tx.want_amount,
                                   tx.counterparty, tx.expires])
    lg.ov.put(L.key_offer_expiry(tx.expires, tx_id), 1)


def get_open_offer(lg: Ledger, offer_id: bytes) -> list:
    offer = lg.ov.get(L.key_offer(offer_id))
    if offer is None:
        raise InvalidTx("unknown_offer", f"no open offer {offer_id.hex()[:16]}…")
    if offer[6] <= lg.now_s:
        raise InvalidTx("expired", "the offer has expired")
    return offer


def check_exchange_limits(lg: Ledger, maker: bytes, taker: bytes, legs: list[tuple[bytes, bytes, str, int]]) -> None:
    # DESIGN §4: both legs are voluntary spending; after the exchange no balance that
    # fell may be below -credit_limit.
    after: dict[tuple[bytes, str], int] = {}
    for src, dst, cls, amount in legs:
        for who, delta in ((src, -amount), (dst, amount)):
            k = (who, cls)
            after[k] = after.get(k, lg.get_balance(who, cls)) + delta
    for (who, cls), balance in sorted(after.items()):
        before = lg.get_balance(who, cls)
        if balance < before and balance < -lg.get_credit_limit(cls):
            raise InvalidTx("over_credit_limit", f"the exchange takes a balance to {balance}, past the credit limit")


def process_accept(lg: Ledger, tx: Accept, tx_id: bytes) -> None:
    # DESIGN §4 Accept: atomic, both legs at once, only by the named counterparty if any.
    lg.require_household(tx.signer)
    offer = get_open_offer(lg, tx.offer)
    maker, give_cls, give, want_cls, want, counterparty, expires = offer
    if tx.signer == maker:
        raise InvalidTx("self_payment", "a household cannot accept its own offer")
    if counterparty is not None and counterparty != tx.signer:
        raise InvalidTx("not_counterparty", "the offer is reserved for another household")
    lg.require_household(maker, "unknown_counterparty")
    legs = [(maker, tx.signer, give_cls, give), (tx.signer, maker, want_cls, want)]
    check_exchange_limits(lg, maker, tx.signer, legs)
    lg.process_nonce(tx.signer, tx.nonce)
    for src, dst, cls, amount in legs:
        lg.process_move(src, dst, cls, amount)
    lg.ov.delete(L.key_offer(tx.offer))
    lg.ov.delete(L.key_offer_expiry(expires, tx.offer))


def process_offer_expiry(lg: Ledger) -> None:
    """Drop every offer whose expiry time has passed (keeps the state bounded)."""
    for key, _ in lg.ov.iter_prefix(L.OFFER_EXPIRY):
        if L.from_u64(key[5:13]) > lg.now_s:
            break
        lg.ov.delete(key)
        lg.ov.delete(L.key_offer(key[13:]))


def process_spend(lg: Ledger, tx: Spend, tx_id: bytes) -> None:
    # DESIGN §4 Spend (registrar): pays out of a category fund, publicly, with a memo.
    lg.require_registrar(tx.signer)
    lg.require_household(tx.to, "unknown_recipient")
    check_positive(tx.amount)
    names = [name for name, _ in lg.params["allocation_categories"]]
    if tx.category not in names:
        raise InvalidTx("unknown_category", f"no allocation category {tx.category!r}")
    key = L.key_fund(tx.category)
    fund = lg.ov.get(key) or [0, 0, 0]
    if fund[0] < tx.amount:
        raise InvalidTx("fund_overdraw", f"the {tx.category} fund holds {fund[0]} Wh, less than {tx.amount}")
    lg.process_nonce(tx.signer, tx.nonce)
    fund[0] -= tx.amount
    fund[2] += tx.amount
    lg.ov.put(key, fund)
    lg.process_credit(tx.to, "kwh", tx.amount)


def process_issue(lg: Ledger, tx: Issue, tx_id: bytes) -> None:
    # docs/classes.md: a registrar issues a class the genesis marks ``issued_by:
    # registrar`` to a household or an association; kwh and hour are never issued (kwh
    # is minted by metering, hour credited by PublicService).
    lg.require_registrar(tx.signer)
    spec = lg.genesis.get_class(tx.cls)
    if spec is None:
        require_class(lg, tx.cls)
        raise InvalidTx("not_issuable", f"{tx.cls} is built in: it is never issued")
    if spec.issued_by != "registrar":
        raise InvalidTx("not_issuable", f"{tx.cls} is not issued by a registrar (issued_by: {spec.issued_by})")
    if not is_active_association(lg, tx.to):
        lg.require_household(tx.to, "unknown_recipient")
    check_positive(tx.amount)
    key = L.key_class_supply(tx.cls)
    supply = (lg.ov.get(key) or 0) + tx.amount
    if supply >= 1 << 63:
        raise InvalidTx("supply_overflow", f"{tx.cls} supply would pass 2^63")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(key, supply)
    lg.process_credit(tx.to, tx.cls, tx.amount)
