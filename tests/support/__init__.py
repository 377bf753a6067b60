"""What several test suites share: waits with deadlines, free ports, fake nodes and live communes.

Test-only code over the product packages, trio and httpx. It must not import conftest
or test modules (they import it), and nothing in the product may import it.
"""
