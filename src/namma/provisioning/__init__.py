"""Provisioning for loan losses: rates per prudential class and the close of business journal."""
