"""The one data-root rule: --data-root > config data.root > $LOWSHOT_DATA_ROOT."""

from __future__ import annotations

import pytest

from lowshot.errors import DataError
from lowshot.utils.paths import ENV_DATA_ROOT, resolve_data_root


@pytest.fixture
def roots(tmp_path, monkeypatch):
    for name in ("cli", "config", "env"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv(ENV_DATA_ROOT, str(tmp_path / "env"))
    return tmp_path


def test_cli_beats_config_beats_environment(roots, monkeypatch):
    assert resolve_data_root(roots / "cli", str(roots / "config")) == roots / "cli"
    assert resolve_data_root(None, str(roots / "config")) == roots / "config"
    assert resolve_data_root(None, "") == roots / "env"
    monkeypatch.delenv(ENV_DATA_ROOT)
    with pytest.raises(DataError, match=r"world 'cub' needs a data root: pass --data-root"):
        resolve_data_root(None, "", what="world 'cub'")


def test_a_chosen_root_that_is_no_folder_names_its_source(roots):
    with pytest.raises(DataError, match=r"missing \(from data.root\) is not a folder"):
        resolve_data_root(None, str(roots / "missing"))  # the environment is not tried instead
    with pytest.raises(DataError, match=r"\(from --data-root\)"):
        resolve_data_root(roots / "missing", str(roots / "config"))
