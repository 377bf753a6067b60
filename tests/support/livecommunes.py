"""Two live communes, linked, with the relayer between them (docs/communes.md "Trying it").

The processes are those of ``voisinage localnet up --communes 2`` (node/localnet/communes.py):
``build_communes`` writes both networks (one validator and two households each, a block
every second so that each chain's clock moves with no traffic), ``link_and_fund`` has each
registrar link the other commune and gives household-0 of each 600 minutes of hours, and
``Relayer`` is ``voisinage relay`` as a child process that can be stopped and started.
That code is trio; a sync test (Playwright's) drives it through a trio loop in a thread
of its own, with ``trio.from_thread``. Every wait polls with a deadline and fails with
the tails of the logs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import trio

from node.home.homedir import KEY_FILE
from node.localnet.cluster import API_TOKEN, Cluster, open_client
from node.localnet.communes import Commune, Relayer, build_communes, link_and_fund, post_tx, sign_send
from tests.support.wait import wait_for
from tokens.ibc import compute_voucher_denom

SPEED = 10                  # chain seconds per second
STARTUP_S = 240.0           # six nodes on a loaded 2-core machine, linked and funded
STOP_S = 60.0
SETTLE_S = 120.0            # a transfer sent, relayed and acknowledged
IDLE_BLOCKS = {"max_idle_s": 1}


class LiveCommunes:
    """``with LiveCommunes(root) as net:`` starts communes A and B and the relayer, and
    stops them all at the end."""

    def __init__(self, root: Path, speed: int = SPEED) -> None:
        self.root = root
        self.a, self.b = build_communes(root, validators=1, households=2, speed=speed, params=IDLE_BLOCKS)
        self.relayer = Relayer([self.a, self.b], root / "relayer.log")
        # The operator's token (the nodes run with it): balances are private to anyone else.
        self.http = httpx.Client(timeout=10, headers={"authorization": f"Bearer {API_TOKEN}"})
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope = trio.CancelScope()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-communes", daemon=True)

    # -- the trio side ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:        # handed to the test thread by __enter__
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with open_client() as client:
            self.client = client
            try:
                with self._scope:
                    for commune in (self.a, self.b):
                        commune.cluster = Cluster(commune.nodes, None, client)
                        await commune.cluster.start_all()
                    await link_and_fund(client, [self.a, self.b])
                    await self.relayer.start()
                    self._ready.set()
                    await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self.relayer.stop()
                    for commune in (self.a, self.b):
                        if commune.cluster is not None:
                            await commune.cluster.stop_all()

    def _call(self, afn, *args: Any) -> Any:
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    # -- start and stop ------------------------------------------------------------------

    def __enter__(self) -> LiveCommunes:
        self._thread.start()
        if not self._ready.wait(STARTUP_S):
            self.stop()
            raise AssertionError(f"two communes not up within {STARTUP_S:g} s\n{self.logs()}")
        if self._error is not None:
            self.stop()
            raise AssertionError(f"two communes did not start: {self._error}\n{self.logs()}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive() and self._token is not None:
            try:
                trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(STOP_S)
        self.http.close()

    def stop_relayer(self) -> None:
        self._call(self.relayer.stop)

    def start_relayer(self) -> None:
        self._call(self.relayer.start)

    # -- who is who ------------------------------------------------------------------------

    def commune(self, name: str) -> Commune:
        return {"A": self.a, "B": self.b}[name]

    def url(self, commune: str, node: str = "validator-0") -> str:
        return next(n.url for n in self.commune(commune).nodes if n.name == node)

    def key_path(self, commune: str, name: str) -> Path:
        return self.commune(commune).home / name / KEY_FILE

    def address(self, commune: str, name: str) -> str:
        return self.commune(commune).key(name).public.hex()

    def chain_id(self, commune: str) -> str:
        return self.commune(commune).chain_id.hex()

    def voucher(self, origin: str, cls: str = "hour") -> str:
        """The denomination of ``origin``'s class ``cls`` held as vouchers elsewhere."""
        return compute_voucher_denom(self.commune(origin).chain_id, cls)

    def logs(self) -> str:
        tails = []
        for commune in (self.a, self.b):
            for node in commune.nodes:
                tails.append(f"--- {commune.name}/{node.name}\n{_tail(node.home / 'node.log')}")
        tails.append(f"--- relayer\n{_tail(self.relayer.log)}")
        return "\n".join(tails)

    # -- reading -------------------------------------------------------------------------

    def get_json(self, commune: str, path: str) -> Any:
        try:
            resp = self.http.get(self.url(commune) + path)
        except httpx.HTTPError:
            return None
        return resp.json() if resp.status_code == 200 else None

    def block_time_s(self, commune: str) -> int:
        return wait_for(lambda: self.get_json(commune, "/status"), 30, f"{commune}'s status",
                        self.logs)["block_time_ms"] // 1000

    def outgoing(self, src: str, dst: str) -> list[dict[str, Any]]:
        doc = self.get_json(src, "/ibc/transfers?limit=500") or {"outgoing": []}
        return [t for t in doc["outgoing"] if t["dest"] == self.chain_id(dst)]

    def balance(self, commune: str, name: str, cls: str = "hour") -> int:
        return self.get_json(commune, f"/accounts/{self.address(commune, name)}")["balances"][cls]

    # -- transfers ---------------------------------------------------------------------

    def send(self, src: str, dst: str, amount: int, *, sender: str = "household-0",
             receiver: str = "household-1", denom: str = "hour", timeout_s: int = 3600) -> int:
        """``sender`` of ``src`` sends ``amount`` to ``receiver`` of ``dst``, to land within
        ``timeout_s`` of ``dst``'s clock; the packet's sequence once the send committed."""
        before = {t["seq"] for t in self.outgoing(src, dst)}
        tx = sign_send(self.commune(src), self.commune(dst), amount, self.block_time_s(dst) + timeout_s,
                       receiver=receiver, sender_name=sender, denom=denom)
        reason = self._call(post_tx, self.client, self.commune(src).url, tx)
        if reason is not None:
            raise AssertionError(f"commune {src} refused the send: {reason}")
        signer = self.address(src, sender)
        mine = lambda: [t["seq"] for t in self.outgoing(src, dst)      # noqa: E731
                        if t["seq"] not in before and t["sender"] == signer and t["amount"] == amount]
        return wait_for(mine, SETTLE_S, f"{src}'s send of {amount} {denom} to commune {dst} to commit",
                        self.logs)[0]

    def wait_status(self, src: str, dst: str, seq: int, status: str) -> dict[str, Any]:
        """The record of packet ``seq`` from ``src`` to ``dst`` once it has ``status``."""
        def done() -> dict[str, Any] | None:
            return next((t for t in self.outgoing(src, dst) if t["seq"] == seq and t["status"] == status), None)
        return wait_for(done, SETTLE_S, f"packet {seq} from {src} to {dst} {status}", self.logs)

    def wait_block_time(self, commune: str, at_least_s: int) -> None:
        wait_for(lambda: self.block_time_s(commune) >= at_least_s, SETTLE_S,
                 f"{commune}'s chain clock at {at_least_s}", self.logs)


def _tail(path: Path, size: int = 1500) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return "(no log)"
