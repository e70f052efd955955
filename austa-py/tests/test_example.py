"""The pipeline example runs end to end (it is also type-checked with mypy --strict by test-all)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline.py"


def test_pipeline_example_imports_and_exports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AUSTA_MASTER_KEY", "AUSTA_MASTER_KEY_FILE")}
    done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "imported 36 lab collections for 12 patients" in done.stdout
    assert "cohort: 8 patients" in done.stdout
    assert "intact" in done.stdout
