"""Helpers the tests share: fixtures' builders, tool checks, servers."""
