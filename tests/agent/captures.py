"""The captures the agent's tests run on: every capture of tests/fixtures/captures/, and those held
back in captures/held-back/ (real captures that the server's tests are not ready for yet, see that
folder's README entry). The agent is checked against all of them."""
from tests.conftest import CAPTURE_NAMES as SERVER_CAPTURES
from tests.conftest import CAPTURES_DIR

HELD_BACK_DIR = CAPTURES_DIR / "held-back"
HELD_BACK = sorted(p.name[: -len(".tar.gz")] for p in HELD_BACK_DIR.glob("*.tar.gz"))
CAPTURE_NAMES = sorted(SERVER_CAPTURES + HELD_BACK)


def tarball(name: str):
    """The tarball of capture `name`, wherever it is kept."""
    held = HELD_BACK_DIR / f"{name}.tar.gz"
    return held if held.exists() else CAPTURES_DIR / f"{name}.tar.gz"
