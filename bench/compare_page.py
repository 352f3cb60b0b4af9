"""The Compare page's race on the shipped models, measured the way a person sees it: the page itself
(under Streamlit's AppTest, no browser) times the race, each model's own seconds, the drawing and when
the first rows of every model were on screen, and writes them in its caption; this prints them.

    python bench/compare_page.py [--runs 2] [--models NAME ...]

Targets (issue 24): first rows of every model within 1 s; the race within the sum of the models' own
seconds plus 20 %. The machine's load average is printed with each run: on a shared CPU it moves both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models", nargs="*", help="two to four shipped image models (default: the page's default)")
    args = parser.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("AR_PRETRAINED_DIR", str(ROOT / "pretrained"))
    for run in range(args.runs):
        at = AppTest.from_file(str(ROOT / "app" / "streamlit_app.py"), default_timeout=900)
        if args.models:
            at.query_params["compare.models"] = json.dumps(args.models)
        at.switch_page("views/compare.py")
        load = os.getloadavg()[0]
        at.run()
        if at.exception or at.error:
            print(f"error: {[e.value for e in (*at.exception, *at.error)]}", file=sys.stderr)
            return 1
        print(f"run {run + 1}, 1-minute load average {load:.1f}: {at.multiselect(key='compare.models').value}")
        for caption in at.caption:
            if "s of its own" in caption.value or "sampled at once" in caption.value:
                print("  " + caption.value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
