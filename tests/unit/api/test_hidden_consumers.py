"""GET /households/{addr}/consumers of an interval fewer than ``min_aggregate``
households made up, on a chain that seals (docs/privacy.md "Public aggregates"): a
household reads neither ΣE nor ``local_wh`` (with its own E, ``local_wh`` gives the
interval's M/ΣE); the operator (the PMO) reads both."""

from __future__ import annotations

from node.api.views import get_consumers_view
from tests.unit.tokens.commune import GENESIS_TIME
from tests.unit.tokens.test_sealing import SealChain
from tokens import layout as L
from tokens.kv import decode_value
from tokens.visibility import is_hidden_interval

HALF = 1800


def test_a_household_reads_no_local_wh_of_a_hidden_interval_the_operator_does():
    chain = SealChain(4)                      # 4 households: fewer than min_aggregate (5)
    chain.block([chain.set_data_key(k) for k in chain.households])

    reading = chain.sealed_reading
    t0 = GENESIS_TIME + HALF
    chain.block([reading(i, 1, t0, 0, 0) for i in range(4)], at=t0 + 1)
    chain.block([reading(0, 2, t0 + 600, 0, 300), reading(1, 2, t0 + 600, 0, 100),
                 reading(2, 2, t0 + 600, 200, 0), reading(3, 2, t0 + 600, 100, 0)], at=t0 + 601)
    chain.block(at=t0 + HALF + 301)
    ikey = L.key_interval(t0)
    assert is_hidden_interval(chain.kv, ikey, chain.kv.get(ikey))
    assert decode_value(chain.kv.get(ikey))[L.IV_SETTLED]
    producer = chain.households[0].public
    k = t0 // HALF
    operator = get_consumers_view(chain.kv, producer, k, None, 100, named=True)
    assert (operator["sum_e"], operator["export_wh"], operator["local_wh"]) == (400, 300, 225)   # M 300 · 300/400
    own = get_consumers_view(chain.kv, producer, k, None, 100, named=False)
    assert own["export_wh"] == 300 and own["sum_e"] is None and own["local_wh"] is None
    assert own["consumers"] == [] and own["consumers_count"] == 2
    # A household that exported nothing used nothing of its own: 0, not unknown.
    consumer = get_consumers_view(chain.kv, chain.households[2].public, k, None, 100, named=False)
    assert consumer["local_wh"] == 0 and consumer["sum_e"] is None
