#!/usr/bin/env python3
"""Runs onnx.checker.check_model (full_check: with shape inference) on each .onnx file given.

Usage: python3 scripts/check_onnx.py FILE.onnx [FILE.onnx ...]
Prints one line per file ("ok FILE" or "FAIL FILE: reason") and exits 1 when any file fails,
2 when the onnx package is missing. Debian: apt-get install -y python3-onnx (then /usr/bin/python3).
"""
import sys

try:
    import onnx
except ImportError:
    print("check_onnx: the onnx package is not installed (apt-get install -y python3-onnx)", file=sys.stderr)
    sys.exit(2)


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            print(f"ok {path}")
        except Exception as e:  # the checker's ValidationError, a parse error, an inference error
            failed += 1
            print(f"FAIL {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    print(f"check_onnx: {len(paths) - failed} passed, {failed} failed (onnx {onnx.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
