"""Adapters to SMS providers. The core never imports from here."""
