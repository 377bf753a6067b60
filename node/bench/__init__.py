"""Every ``voisinage bench`` benchmark, each against a baseline measured in the same run, and their statistics.

It may import any room of node/ that it measures; nothing but node/commands imports it.
"""
