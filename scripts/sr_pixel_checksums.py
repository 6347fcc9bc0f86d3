"""Write ganlib/checksums/sr_pixels.sha256: the SHA-256 of the decoded pixels of every SR image.

ganlib.data accepts a downloaded image whose file differs from the mirror's (another PNG encoder,
BMP instead of PNG) when its pixels hash to this list (see ganlib.data.pixel_digest). Every mirror
file must first match ganlib/checksums/sr.sha256. Run after changing that list:
    .venv/bin/python scripts/sr_pixel_checksums.py [MIRROR]
MIRROR defaults to $GANLIB_DATA_MIRROR, else ../shared/datasets. tests/test_sr_download.py checks
the result against the mirror.
"""

import os
import sys
from pathlib import Path

from ganlib.data import pixel_digest
from ganlib.fetch import file_digest

ROOT = Path(__file__).resolve().parents[1]
CHECKSUMS = ROOT / "ganlib" / "checksums"


def main(mirror: Path) -> None:
    lines = []
    for line in (CHECKSUMS / "sr.sha256").read_text().splitlines():
        digest, relpath = line.split()
        path = mirror / "sr" / relpath
        if not path.is_file() or file_digest(path, "sha256") != digest:
            sys.exit(f"{path} is missing or does not match sr.sha256; use an intact mirror.")
        lines.append(f"{pixel_digest(path)}  {relpath}\n")
    (CHECKSUMS / "sr_pixels.sha256").write_text("".join(lines))
    print(f"wrote {len(lines)} pixel checksums to {CHECKSUMS / 'sr_pixels.sha256'}")


if __name__ == "__main__":
    default = os.environ.get("GANLIB_DATA_MIRROR") or ROOT.parent / "shared" / "datasets"
    main(Path(sys.argv[1] if len(sys.argv) > 1 else default))
