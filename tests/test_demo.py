"""README's first command: the demo runs pyrotorque for real against a throwaway swarm."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_demo_loads_the_dropped_metafile_and_the_queue_starts_items():
    done = subprocess.run([sys.executable, os.path.join(REPO, "contrib", "demo.py"),
                           "--seconds", "12", "--every", "0"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Loaded 'demo-gamma'" in output
    assert "Starting 'demo-gamma'" in output        # the tree watch's load, started
    assert output.count("Starting 'demo-") >= 2     # and at least one more
    assert "[demo] torn down" in output
