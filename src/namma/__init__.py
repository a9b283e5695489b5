"""Namma Finance: loan management for microfinance institutions."""

__version__ = "0.1.0"
