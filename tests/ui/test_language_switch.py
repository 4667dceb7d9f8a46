"""A user switches the interface language from the account sidebar."""

from __future__ import annotations

import sqlalchemy as sa
from test_app import log_in


def test_a_french_user_switches_to_english_at_once_and_it_is_remembered(seeded: dict[str, str], db: sa.Engine) -> None:
    at = log_in("alice")
    assert at.button(key="w_logout").label == "Se déconnecter"
    assert "Montant" in at.dataframe[0].value.columns
    assert at.selectbox(key="w_language").label == "Langue"

    at.selectbox(key="w_language").select("en").run()

    assert not at.exception and not at.error
    assert at.session_state["actor"].locale == "en"
    assert at.button(key="w_logout").label == "Log out"
    assert at.selectbox(key="w_language").label == "Language"
    assert at.selectbox(key="w_language").value == "en"
    assert "Amount" in at.dataframe[0].value.columns
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT locale FROM app.users WHERE login = 'alice'")).scalar_one() == "en"
    assert log_in("alice").button(key="w_logout").label == "Log out"
