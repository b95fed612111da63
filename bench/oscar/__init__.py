"""A minimal django-oscar project for the comparison of DESIGN.md section 12.

It runs only in the benchmark's own virtualenv (var/bench-oscar-venv, built from
`requirements.txt` here by `bench.oscar_bench`), in a process of its own
(`python -m bench.oscar.worker`): the shop, its tests and its virtualenv never import it.
"""
