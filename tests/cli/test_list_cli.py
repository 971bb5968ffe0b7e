"""``lowshot list``: every registered component is listed, the AV encoders of ``lowshot extract`` included."""

from __future__ import annotations

import pytest

from lowshot import _registry
from lowshot.cli.main import main


def test_list_encoders_shows_every_registered_encoder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "encoders"]) == 0
    listed = {line.strip() for line in capsys.readouterr().out.splitlines()[1:]}
    assert {"av.vggish", "av.c3d", "av.s3d", "av.clip", "av.clap", "av.effnet_frames", "text.clip"} <= listed
    assert listed == set(_registry.ENCODERS.names())
