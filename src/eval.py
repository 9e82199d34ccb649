"""Evaluate trained runs again: `python -m src.eval RUN_DIR... [key=value ...]` (src/run/eval.py)."""

from src.run.eval import main

if __name__ == "__main__":
    raise SystemExit(main())
