"""What several test suites share: waits with deadlines, free ports, fake nodes and live communes.

Test-only code: imports the product packages and trio, httpx, pytest; nothing in the
product may import it.
"""
