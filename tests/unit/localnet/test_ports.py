"""node/localnet/ports.py: listening ports are picked below the kernel's ephemeral range,
where no outgoing connection can take them between the pick and the bind."""

from __future__ import annotations

import socket

from node.localnet.ports import find_listen_port_block, is_port_free, read_ephemeral_range


def test_the_ephemeral_range_is_read_from_the_kernel_file(tmp_path):
    path = tmp_path / "ip_local_port_range"
    path.write_text("40000\t50000\n")
    assert read_ephemeral_range(str(path)) == (40000, 50000)


def test_invalid_or_missing_range_file_gives_linux_s_default(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("forty thousand\n")
    assert read_ephemeral_range(str(bad)) == (32768, 60999)
    assert read_ephemeral_range(str(tmp_path / "missing")) == (32768, 60999)


def test_a_listen_block_is_free_and_below_the_ephemeral_range():
    low, _ = read_ephemeral_range()
    stop = low if low - 20000 > 20 else 60000      # no room below it: anywhere from 20000
    for _ in range(20):
        port = find_listen_port_block(5)
        assert 20000 <= port and port + 4 < stop
        assert all(is_port_free(port + i) for i in range(5))


def test_a_port_in_use_is_not_free():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", find_listen_port_block(1)))
        sock.listen()
        assert not is_port_free(sock.getsockname()[1])
