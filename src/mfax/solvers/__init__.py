"""Solvers: structural policy gradient (SPG, RSPG) and, later, model-free and classical ones."""
