"""Shared fakes and helpers of the test tree: one home for each, used by every test package."""
