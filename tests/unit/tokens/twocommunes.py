"""Two test communes that link each other, with the headers, commits and proofs a relayer
would carry between them (shared by the tests of tokens/rules_ibc.py)."""

from __future__ import annotations

from consensus.block import Commit, CommitSig, Header, compute_block_id, compute_validators_hash
from consensus.vote import PRECOMMIT, Vote
from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, Chain, make_genesis
from tests.unit.tokens.test_rules_euro import produce_and_settle
from tokens import ibc as I
from tokens import txs as T
from tokens.kv import decode_value
from tokens.statetree import compute_proof
from wire import Keypair, sign_message
from wire.merkle import encode_proof

FAR = 10**10        # a timeout no test reaches


def make_header(chain: Chain, signers: list[Keypair], next_set: list[Keypair] | None = None,
                dt_s: int = 1, salt: bytes = b"") -> tuple[Header, Commit]:
    """The header of ``chain``'s next block (time + ``dt_s``), carrying its current state
    root, and a commit of ``signers``."""
    next_set = signers if next_set is None else next_set
    header = Header(chain_id=chain.genesis.chain_id, height=chain.height + 1, time_ms=(chain.time_s + dt_s) * 1000,
                    parent=bytes(32), tx_root=salt.ljust(32, b"\0")[:32], state_hash=chain.state_hash(),
                    proposer=signers[0].public, next_validators=compute_validators_hash([k.public for k in next_set]),
                    version=1)
    return header, make_commit(header, signers)


def make_commit(header: Header, signers: list[Keypair]) -> Commit:
    block_id = compute_block_id(header)
    sigs = []
    for key in signers:
        vote = sign_message(Vote(kind=PRECOMMIT, height=header.height, round=0, block_id=block_id,
                                 validator=key.public, sig=bytes(64)), header.chain_id, key)
        sigs.append(CommitSig(validator=key.public, sig=vote.sig))
    return Commit(height=header.height, round=0, block_id=block_id, sigs=tuple(sigs))


def update_tx(header: Header, commit: Commit, next_validators: tuple[bytes, ...] = ()) -> T.UpdateClient:
    """An UpdateClient carrying ``header`` and ``commit`` encoded, as a relayer does."""
    return T.UpdateClient(header=header.encode(), commit=commit.encode(), next_validators=next_validators)


def misbehaviour_tx(header_a: Header, commit_a: Commit, header_b: Header, commit_b: Commit) -> T.Misbehaviour:
    return T.Misbehaviour(header_a=header_a.encode(), commit_a=commit_a.encode(), header_b=header_b.encode(),
                          commit_b=commit_b.encode())


def prove(chain: Chain, key: bytes, root: bytes | None = None) -> bytes:
    """A proof of ``key`` (present or absent) against ``root`` (default: the current one);
    the tree nodes of earlier roots stay in a test chain's store."""
    return encode_proof(compute_proof(chain.kv, root or chain.state_hash(), key)[1])


class Communes:
    """Commune A (4 validators) and commune B (3 validators), each linked to the other;
    household 0 of A holds kWh."""

    def __init__(self) -> None:
        genesis_a, self.keys_a = make_genesis(4)
        genesis_b, self.keys_b = make_genesis(4, n_validators=3)
        self.a, self.b = Chain(genesis_a), Chain(genesis_b)
        self.vals = {id(self.a): VALIDATORS[:4], id(self.b): VALIDATORS[:3]}
        self.roots: dict[tuple[bytes, int], bytes] = {}
        produce_and_settle(self.a, self.keys_a)
        self.b.block(at=self.a.time_s)      # the two communes' clocks agree
        for here, there in ((self.a, self.b), (self.b, self.a)):
            here.block([self.create_client(here, there)])

    @property
    def id_a(self) -> bytes:
        return self.a.genesis.chain_id

    @property
    def id_b(self) -> bytes:
        return self.b.genesis.chain_id

    def other(self, chain: Chain) -> Chain:
        return self.b if chain is self.a else self.a

    def create_client(self, here: Chain, there: Chain, by: Keypair = REGISTRAR) -> bytes:
        return here.tx(T.CreateClient, by, chain_id=there.genesis.chain_id, name=f"commune {len(self.vals[id(there)])}",
                       validators=tuple(k.public for k in self.vals[id(there)]), from_height=1)

    def update(self, there: Chain, **kw) -> tuple[bytes, Header]:
        """An UpdateClient of ``there``'s next header, for the other chain; ``there`` then
        applies its next block at the header's time, so the header is its real one."""
        header, commit = make_header(there, self.vals[id(there)], **kw)
        self.roots[(header.chain_id, header.height)] = header.state_hash
        return update_tx(header, commit).encode(), header

    def relay_header(self, there: Chain) -> int:
        """Update the other chain's client of ``there``; returns the proof height."""
        data, header = self.update(there)
        self.other(there).block([data])
        there.block()
        return header.height

    def send(self, key: Keypair, amount: int, denom: str = "kwh", receiver: bytes | None = None,
             timeout_s: int = FAR, src: Chain | None = None) -> tuple[bytes, T.Packet]:
        src = src or self.a
        dst = self.other(src)
        receiver = receiver if receiver is not None else (self.keys_b[2] if src is self.a else self.keys_a[2]).public
        seq = decode_value(src.kv.get(I.key_sequence(dst.genesis.chain_id)) or b"\x01")
        data = src.tx(T.SendToCommune, key, dest=dst.genesis.chain_id, receiver=receiver, denom=denom,
                      amount=amount, timeout_s=timeout_s)
        packet = T.Packet(source=src.genesis.chain_id, dest=dst.genesis.chain_id, seq=seq, sender=key.public,
                          receiver=receiver, denom=denom, amount=amount, timeout_s=timeout_s)
        return data, packet

    def recv(self, packet: T.Packet, height: int) -> bytes:
        src = self.a if packet.source == self.id_a else self.b
        return T.RecvPacket(packet=packet, proof_height=height,
                            proof=prove(src, I.key_commitment(packet.dest, packet.seq),
                                                 self.roots[(packet.source, height)])).encode()

    def ack(self, packet: T.Packet, height: int, ok: bool | None = None, reason: str | None = None) -> bytes:
        dst = self.b if packet.dest == self.id_b else self.a
        stored = decode_value(dst.kv.get(I.key_receipt(packet.source, packet.seq)))
        return T.Acknowledge(packet=packet, ok=stored[0] if ok is None else ok,
                             reason=stored[1] if reason is None else reason, proof_height=height,
                             proof=prove(dst, I.key_receipt(packet.source, packet.seq),
                                         self.roots[(packet.dest, height)])).encode()

    def timeout(self, packet: T.Packet, height: int) -> bytes:
        dst = self.b if packet.dest == self.id_b else self.a
        return T.Timeout(packet=packet, proof_height=height,
                         proof=prove(dst, I.key_receipt(packet.source, packet.seq),
                                     self.roots[(packet.dest, height)])).encode()

    def transfer(self, key: Keypair, amount: int, **kw) -> T.Packet:
        """A whole round: send on the source, receive on the destination, acknowledge."""
        src = kw.pop("src", self.a)
        data, packet = self.send(key, amount, src=src, **kw)
        src.block([data])
        dst = self.other(src)
        dst.block([self.recv(packet, self.relay_header(src))])
        src.block([self.ack(packet, self.relay_header(dst))])
        return packet
