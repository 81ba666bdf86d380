"""Bisecting releases, interpreters and commits: where did a verdict change?"""
