"""Project tool: mutation testing of the stream core (``make mutate``), not run in CI.

Python modules are mutated by mutmut 3 (``mutmut_pass``), each in its own staging directory under
``var/mutation/`` with only the test files mapped to it (``targets``); the Redis Lua script, which no Python tool
mutates, gets a pass of hand-listed mutants (``lua_pass``). ``report`` writes ``benchmarks/results/mutation.md``.
"""
