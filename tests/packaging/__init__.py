"""Tests that install skycheck as its users do: the wheel, pre-commit, the GitHub Action."""
