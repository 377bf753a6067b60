"""Tendermint-style BFT engine as a sans-I/O state machine, blocks, commits, evidence (DESIGN §6).

Pure: imports only wire; no I/O, clock, randomness, trio, libp2p or plyvel.

Contracts (what node/ and tokens/ code against):

- ``consensus.block``: ``Header(chain_id, height, time_ms, parent, tx_root, state_hash,
  proposer)``, ``Block(header, txs, last_commit, evidence)``, ``Commit(height, round,
  block_id, sigs: tuple[CommitSig(validator, sig)])``; ``compute_block_id`` (sha256 of
  the header encoding), ``compute_tx_root`` (Merkle root of sha256 tx ids),
  ``check_block_shape``, ``check_block_time``, ``check_block_lag``, ``verify_commit`` and
  ``verify_block_evidence``, raising ``InvalidBlock(reason)``; ``get_equivocators``.
- ``consensus.messages``: ``Proposal``, ``Vote``, ``DuplicateVote`` (evidence),
  ``Decision`` (block + commit for lagging peers), ``decode_consensus(bytes)``.
  Signatures use wire.sign_message / verify_message with the chain id.
- ``consensus.vote``: ``Vote``, ``PREVOTE``/``PRECOMMIT``, ``DuplicateVote``,
  ``verify_vote``, ``verify_evidence(validators, chain_id, ev)`` raising
  ``InvalidVote(reason)``, ``compute_quorum`` (floor(2n/3)+1).
- ``consensus.privval``: ``SignState`` (a wire message: store it with fsync),
  ``check_hrs(last, height, round, step, sign_hash) -> SignVerdict(allow, reason)``;
  ``consensus.step.Step``: the steps of a height, defined once (engine state, sign record).
- ``consensus.events``: engine inputs ``Start``, ``ProposalMsg``, ``VoteMsg``,
  ``EvidenceMsg``, ``DecisionMsg``, ``Timeout``, ``ValueReady`` (= ``NewTx``);
  effects ``Broadcast``, ``ScheduleTimeout``, ``PersistBeforeSign`` (fsync before the
  Broadcast after it), ``CommitBlock(block, commit, equivocators)``; the
  ``Application`` protocol (``validator_set``, ``propose``, ``validate``, ``is_timely``) and
  ``EngineConfig`` (timeouts of DESIGN §6).
- ``consensus.engine.Engine(chain_id, key, app, config, sign_state)``:
  ``step(input) -> [effects]``; ``dropped`` counts refused remote input by reason.
  After a ``CommitBlock`` the node applies and stores the block, then sends
  ``Start(height + 1, commit)``.
- ``consensus.sync.verify_chain``: verifies blocks and commits from an untrusted peer
  in order against the validator set of each height.

Notes for the node:
- GOSSIP timeouts re-send identical bytes (own recent votes, the round's proposal,
  the polka of the valid value, decisions for lagging peers). A gossip layer whose
  seen-cache drops repeats should send them to peers directly, or rely on its own
  loss recovery; the simulator shows liveness needs some such re-delivery.
- A Proposal or Decision carries a whole block, so it may exceed the 1 MiB gossip
  limit (``messages.MAX_CONSENSUS_BYTES`` is 4 MiB + 64 KiB).
- The engine forgets committed evidence older than EVIDENCE_MAX_AGE and, after a
  restart, all of it: the ledger must also refuse evidence it already recorded.
"""
