import subprocess
import sys


def test_importing_engine_does_not_import_streamlit():
    code = "import sys, engine, engine.tasks, engine.training, engine.generation; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
