"""Helpers shared by several components."""
