"""Regenerate docs/sobel_edges.png, the picture in the README:

    python docs/make_readme_picture.py        (with cconv and matplotlib importable)

It runs examples/sobel_edges.py at 80 dpi and stores the result with a 128-colour palette
(Pillow, which matplotlib depends on), which keeps the file under 100 KB.
"""
import os
import runpy
import tempfile

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    example = runpy.run_path(os.path.join(HERE, "..", "examples", "sobel_edges.py"))
    target = os.path.join(HERE, "sobel_edges.png")
    with tempfile.TemporaryDirectory() as tmp:
        with Image.open(example["main"](tmp, dpi=80)) as picture:
            picture.convert("RGB").quantize(128).save(target, optimize=True)
    print(f"wrote {target} ({os.path.getsize(target) // 1024} KB)")


if __name__ == "__main__":
    main()
