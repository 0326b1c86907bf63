"""Shared fakes and helpers for the whole test tree; each file is one kind of fake."""
