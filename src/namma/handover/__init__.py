"""Agents' daily cash hand-over at the branch, reconciled with their collections."""
