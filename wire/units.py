"""The typed numbers of the ledger and of consensus, defined once for every package.

A ``NewType`` costs nothing at run time; it says in a signature what an ``int`` counts.
DESIGN §4: ``kwh`` balances are in Wh, ``hour`` balances in minutes; shares and rates
are in basis points (10 000 bp = 100 %). DESIGN §6: blocks have a height, votes a round.
"""

from __future__ import annotations

from typing import NewType

Height = NewType("Height", int)
Round = NewType("Round", int)
BlockId = NewType("BlockId", bytes)
Wh = NewType("Wh", int)
Minutes = NewType("Minutes", int)
BasisPoints = NewType("BasisPoints", int)

__all__ = ["BasisPoints", "BlockId", "Height", "Minutes", "Round", "Wh"]
