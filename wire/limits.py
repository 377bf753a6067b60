"""Size limits of DESIGN §2. Every decoder enforces one of them."""

MAX_TX_BYTES = 4 * 1024
MAX_BLOCK_BYTES = 4 * 1024 * 1024
MAX_GOSSIP_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 512              # a block header (~300 bytes), carried alone between communes
