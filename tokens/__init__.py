"""The ledger: accounts, transactions, half-hourly settlement, treasury epochs, state hash (DESIGN §4).

Pure: imports only wire and governance; no I/O, clock, randomness, trio, libp2p or plyvel.
"""

from tokens.errors import InvalidLedgerBlock, InvalidTx
from tokens.kv import KV, MemoryKV, Overlay
from tokens.queries import (
    get_account, get_allocation, get_consumers, get_funds, get_height, get_household,
    get_household_intervals, get_interval, get_interval_at, get_params, get_proposals, get_registrar_set,
    get_time_ms, get_totals, get_treasury, get_validator_set, get_validators,
)
from tokens.state import (
    BlockContext, BlockResult, apply_block, check_tx, genesis_writes, get_rescanned_state_hash,
    get_state_hash, select_and_apply, select_txs,
)

__all__ = [
    "InvalidLedgerBlock", "InvalidTx", "KV", "MemoryKV", "Overlay",
    "get_account", "get_allocation", "get_consumers", "get_funds", "get_height", "get_household",
    "get_household_intervals", "get_interval", "get_interval_at", "get_params", "get_proposals", "get_registrar_set",
    "get_time_ms", "get_totals", "get_treasury", "get_validator_set", "get_validators",
    "BlockContext", "BlockResult", "apply_block", "check_tx", "genesis_writes", "get_rescanned_state_hash",
    "get_state_hash", "select_and_apply", "select_txs",
]
