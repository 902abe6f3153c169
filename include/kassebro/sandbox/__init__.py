"""Local emulators of the ledger APIs kassebro posts to, with fault injection.

Each emulator is a FastAPI app serving the same paths, auth, payload shapes, status codes and
error bodies as the real API for the subset kassebro uses, so clients are tested over real HTTP
without touching a customer's books. `server.running(app)` runs any of them on 127.0.0.1 in a
background thread; each module also has a command line (`python -m kassebro.sandbox.tripletex`).

What they share is in `admin.py` (the fault layer in front of each API and the `/_sandbox` admin
API), `common.py` (the fault list, the call log, the raw-ASGI helpers) and `amounts.py` (øre and
VAT arithmetic). No sandbox imports kassebro's own booking, money or VAT code: each computes what
its system documents, so a disagreement with kassebro can show (tests/unit/test_sandbox_independence.py).
"""
