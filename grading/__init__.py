"""Grading: agent KPIs and grades per period, and training impact.

Reads score records (the contract in ``kefuqa.contract``) and never loads a
model, so a manager can grade an archive on a laptop.
"""
