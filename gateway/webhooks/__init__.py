"""Webhook callbacks: runs' events delivered, signed, retried and guarded.

``signing`` (pure): Standard Webhooks headers for a body and a set of secrets. ``schedule``
(pure): when to try again after an outcome, and what an outcome means. ``guard``: which URLs
and addresses a delivery may reach, parsed purely, and enforced again at connection time by a
resolver that refuses private answers. ``dispatcher`` (I/O): claims due outbox rows and
delivers them with one ``aiohttp.ClientSession``.
"""
