"""The write side: one module per capability, each public function one transaction.

Every function takes plain values, a UnitOfWork and an Actor, checks the actor's permission,
writes an audit event, and raises domain errors (backoffice.domain.errors) that the UI shows.
"""
